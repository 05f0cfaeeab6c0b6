"""The console's fingerprint step, on a case page: the officer reads the traveler's document
and submits live prints for the 1:1 against that document's enrolled prints, or, without a
document, searches the case's flight for candidates to check.

Plain multipart forms (they work without script) carrying the session's CSRF token like every
console form; the answer is the case page again, with the result beside the face evidence. A
print the engine cannot use, or a document without enrolled prints, is shown on the page as
what to do next (422/404), and nothing is recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from entryexit.api.deps import ServicesDep
from entryexit.api.routes.documents import document_from_form
from entryexit.api.routes.fingerprints import submitted_prints
from entryexit.bootstrap import Services
from entryexit.domain.access import Permission
from entryexit.domain.fingerprints import CombinedEvidence
from entryexit.errors import (
    BiometricError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    http_status,
)
from entryexit.services.console import Case
from entryexit.services.console_accounts import SignedIn
from entryexit.services.fingerprints import (
    MAX_PRINTS,
    CasePrintView,
    FingerprintSearch,
    FingerprintVerification,
    PrintFormat,
    PrintSide,
)
from entryexit.web.console import PREFIX, SessionDep, _image, _page

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Shown to the officer, never a decision: how a search's candidates are to be treated.
SEARCH_CAVEAT = (
    "Candidates are proposals: a flight search gives a stranger as many chances as there are "
    "travelers. Check the candidate's document before confirming."
)


# The drawing: a minutia is a ring (case_prints.html) with a tick along its direction; the
# enrolled side sits to the right of the live one, GAP pixels apart (500 ppi pixels: the
# viewBox is the prints').
GAP = 24
TICK = 14
# A pair's line is as opaque as the pair is strong: a mate's pairs (relaxed similarity about
# 0.1-0.3 on FVC2002) are drawn solid, a stranger's (about 0.02) barely; never invisible.
STRENGTH_TO_OPACITY = 4.0
FAINTEST = 0.15


@dataclass(frozen=True, slots=True)
class Minutia:
    x: float
    y: float
    tip_x: float
    tip_y: float
    paired: bool


@dataclass(frozen=True, slots=True)
class PrintDrawing:
    """One kept print against the enrolled finger, laid out for the case page's inline SVG
    (drawn over the live image, served same-origin, and over a blank canvas of the enrolled
    print's size: no enrolled image is kept)."""

    view: CasePrintView
    width: float
    height: float
    offset: float  # where the enrolled side starts
    live: tuple[Minutia, ...]
    enrolled: tuple[Minutia, ...]
    # live x, y to enrolled x, y, and the line's opacity (the pair's strength, made visible)
    pairs: tuple[tuple[float, float, float, float, float], ...]


def _minutiae(side: PrintSide, dx: float, paired: set[int]) -> tuple[Minutia, ...]:
    return tuple(
        Minutia(
            x + dx,
            y,
            x + dx + TICK * math.cos(angle),
            y + TICK * math.sin(angle),
            index in paired,
        )
        for index, (x, y, angle) in enumerate(side.minutiae)
    )


def print_drawing(view: CasePrintView) -> PrintDrawing:
    live, enrolled = view.live, view.enrolled
    offset = float(live.width + GAP)
    width = offset + (enrolled.width if enrolled else 0)
    height = float(max(live.height, enrolled.height if enrolled else 0))
    pairs = (
        tuple(
            (
                live.minutiae[i][0],
                live.minutiae[i][1],
                enrolled.minutiae[j][0] + offset,
                enrolled.minutiae[j][1],
                min(1.0, max(FAINTEST, strength * STRENGTH_TO_OPACITY)),
            )
            for i, j, strength in view.pairs
        )
        if enrolled is not None
        else ()
    )
    return PrintDrawing(
        view,
        width,
        height,
        offset,
        _minutiae(live, 0.0, {i for i, _, _ in view.pairs}),
        _minutiae(enrolled, offset, {j for _, j, _ in view.pairs}) if enrolled else (),
        pairs,
    )


def kept_prints(services: Services, signed_in: SignedIn, capture_id: str) -> list[PrintDrawing]:
    """The prints this officer took on the case, drawn (none for a role that takes none)."""
    if not signed_in.principal.can(Permission.CASE_PRINTS_VIEW):
        return []
    return [
        print_drawing(v) for v in services.fingerprints.case_prints(signed_in.principal, capture_id)
    ]


def render_case(
    request: Request,
    services: Services,
    signed_in: SignedIn,
    capture_id: str,
    status: int = 200,
    verification: FingerprintVerification | None = None,
    search: FingerprintSearch | None = None,
    error: str | None = None,
    evidence: CombinedEvidence | None = None,
    case: Case | None = None,
) -> HTMLResponse:
    """The case page, with the fingerprint step's result (or its error) when there is one.
    ``case``: the case as already read for this request (it is not read, scored and audited
    as a view a second time)."""
    if case is None:
        case = services.console.case(signed_in.principal, capture_id)
    if verification is not None and verification.resolved_case == capture_id:
        case = replace(case, capture=replace(case.capture, resolution="confirmed"))
    _, manifest = services.console.flight(signed_in.principal, case.flight.id)
    by_traveler = {t.traveler_id: t for t in manifest}
    drawings = kept_prints(services, signed_in, capture_id)
    return _page(
        request,
        "case.html",
        signed_in,
        status=status,
        case=case,
        manifest=manifest,
        by_traveler=by_traveler,
        evidence=evidence,
        verification=verification,
        search=search,
        search_caveat=SEARCH_CAVEAT,
        fingerprint_error=error,
        max_prints=MAX_PRINTS,
        kept_prints=drawings,
    )


def _live_prints(prints: list[UploadFile], fingers: list[int]) -> list[tuple[UploadFile, int]]:
    """The rows of the form that carry a file (a browser sends an empty part for a file input
    left empty), each with its finger position."""
    if len(prints) != len(fingers):
        raise InvalidInputError("every print needs its finger position")
    rows = zip(prints, fingers, strict=True)
    return [(upload, finger) for upload, finger in rows if upload.filename or upload.size]


def _require_prints_step(signed_in: SignedIn) -> None:
    if not signed_in.principal.can(Permission.FINGERPRINT_VERIFY):
        raise PermissionDeniedError("fingerprint checks are for officers and supervisors")


@router.post("/cases/{capture_id}/fingerprints")
async def case_fingerprints(
    request: Request,
    capture_id: str,
    services: ServicesDep,
    signed_in: SessionDep,
    action: Annotated[str, Form(max_length=8)],
    prints: Annotated[list[UploadFile], File()],
    fingers: Annotated[list[int], Form()],
    format: Annotated[PrintFormat, Form()] = PrintFormat.IMAGE,
    ppi: Annotated[float | None, Form()] = None,
    mrz: Annotated[str | None, Form(max_length=200)] = None,
    issuing_state: Annotated[str | None, Form(max_length=3)] = None,
    number: Annotated[str | None, Form(max_length=20)] = None,
) -> HTMLResponse:
    """``action=verify``: the 1:1 against the document read (a match records the traveler's
    biometric encounter on the case's flight and closes the case); ``action=search``: the
    flight's candidates, for the officer to confirm with their documents."""
    _require_prints_step(signed_in)
    if action not in ("verify", "search"):
        raise InvalidInputError("action is verify or search")
    actor = signed_in.principal
    case = await run_in_threadpool(services.console.case, actor, capture_id)
    verification = search = None
    evidence = None
    try:
        rows = _live_prints(prints, fingers)
        submitted = await submitted_prints(
            [u for u, _ in rows], [f for _, f in rows], format, ppi if ppi else None
        )
        if action == "verify":
            document = document_from_form(services, mrz or None, issuing_state, number)
            verification = await run_in_threadpool(
                services.fingerprints.verify,
                actor,
                document,
                submitted,
                case.flight.id,
                f"console:{actor.key_id}",
                capture_id,
            )
            evidence = services.fingerprints.with_face(
                verification, case.face_scores.get(verification.traveler_id)
            )
        else:
            search = await run_in_threadpool(
                services.fingerprints.search, actor, case.flight.id, submitted
            )
    except (InvalidInputError, BiometricError, NotFoundError) as exc:
        status, _ = http_status(exc) or (422, "")
        return await run_in_threadpool(
            render_case,
            request,
            services,
            signed_in,
            capture_id,
            status,
            error=exc.message,
            case=case,
        )
    return await run_in_threadpool(
        render_case,
        request,
        services,
        signed_in,
        capture_id,
        verification=verification,
        search=search,
        evidence=evidence,
        case=case,
    )


@router.get("/cases/{capture_id}/prints/{print_id}")
def case_print_image(
    capture_id: str, print_id: str, services: ServicesDep, signed_in: SessionDep
) -> Response:
    """A live print kept on the case, as a same-origin PNG (the console's CSP has no
    ``data:``), opened in memory for the officer who took it; every view is audited."""
    return _image(services.fingerprints.case_print_image(signed_in.principal, capture_id, print_id))
