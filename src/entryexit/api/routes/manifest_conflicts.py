"""The agency's queue of manifest conflicts: details a carrier's manifest brought for a
document whose details another carrier (or the agency) set first (docs/service.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import (
    ConflictResolutionCreate,
    DocumentRef,
    ManifestConflictPublic,
    ManifestDetailsPublic,
)
from entryexit.domain.conflicts import (
    DEFAULT_PAGE,
    MAX_PAGE,
    ConflictCursor,
    ConflictQuery,
    ConflictStatus,
)
from entryexit.domain.model import ConflictSide, ManifestConflict, ManifestTraveler

router = APIRouter(tags=["manifest conflicts"])


def _details(traveler: ManifestTraveler | None) -> ManifestDetailsPublic | None:
    if traveler is None:
        return None
    return ManifestDetailsPublic(
        surname=traveler.surname,
        given_names=traveler.given_names,
        date_of_birth=traveler.date_of_birth,
        sex=traveler.sex.value,
        nationality=traveler.nationality,
        citizenship_class=traveler.citizenship_class.value,
        document_type=traveler.document_type.value,
        document_expiry=traveler.document_expiry,
    )


def _public(conflict: ManifestConflict) -> ManifestConflictPublic:
    named = conflict.proposed or conflict.kept
    return ManifestConflictPublic(
        id=conflict.id,
        document=(
            None
            if named is None
            else DocumentRef(
                issuing_state=named.document.issuing_state, number=named.document.number
            )
        ),
        flight_id=conflict.flight_id,
        proposed_by=conflict.proposed_by,
        held_by=conflict.held_by,
        kept=_details(conflict.kept),
        proposed=_details(conflict.proposed),
        created_at=conflict.created_at,
        resolved_at=conflict.resolved_at,
        resolution=conflict.resolution.value if conflict.resolution is not None else None,
    )


@router.get(
    "/v1/manifest-conflicts",
    responses={
        200: {
            "headers": {
                "Link": {
                    "description": 'The next page, `<...&after=CURSOR>; rel="next"`, while'
                    " more follow",
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
def list_manifest_conflicts(
    request: Request,
    response: Response,
    services: ServicesDep,
    _caller: CallerDep,
    status: Annotated[ConflictStatus, Query()] = ConflictStatus.OPEN,
    flight_id: Annotated[
        str | None, Query(max_length=36, description="Only this flight's conflicts.")
    ] = None,
    carrier: Annotated[
        str | None,
        Query(pattern="^[A-Za-z0-9]{2,3}$", description="Only those this carrier proposed."),
    ] = None,
    after: Annotated[
        str | None,
        Query(description="The cursor of the next page (the ``Link: rel=next`` header's)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> list[ManifestConflictPublic]:
    """Conflicts in pages, oldest first, with the details in force (``kept``) and those the
    carrier proposed: open ones (``status=resolved`` or ``all`` for the others), of one
    flight or one proposing carrier if asked. Where more follow, a ``Link`` header names the
    next page (``rel="next"``, its ``after`` cursor); a malformed cursor is a 400."""
    page = services.flights.manifest_conflict_page(
        ConflictQuery(
            status=status,
            flight_id=flight_id,
            carrier=carrier.upper() if carrier is not None else None,
            after=ConflictCursor.decode(after) if after is not None else None,
            limit=limit,
        )
    )
    if page.next is not None:
        following = request.url.include_query_params(after=page.next.encode())
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [_public(c) for c in page.conflicts]


@router.post("/v1/manifest-conflicts/{conflict_id}/resolution")
def resolve_manifest_conflict(
    conflict_id: str, body: ConflictResolutionCreate, services: ServicesDep, caller: CallerDep
) -> ManifestConflictPublic:
    """Keep the details in force, or apply the proposed ones; audited. Answers the conflict
    as it was (both sides)."""
    conflict = services.flights.resolve_manifest_conflict(
        conflict_id, ConflictSide(body.apply), caller
    )
    return _public(conflict)
