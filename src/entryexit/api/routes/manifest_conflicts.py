"""The agency's queue of manifest conflicts: details a carrier's manifest brought for a
document whose details another carrier (or the agency) set first (docs/service.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from entryexit.api.deps import CallerDep, ServicesDep
from entryexit.api.schemas import (
    ConflictResolutionCreate,
    DocumentRef,
    ManifestConflictPublic,
    ManifestDetailsPublic,
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


@router.get("/v1/manifest-conflicts")
def list_manifest_conflicts(
    services: ServicesDep,
    _caller: CallerDep,
    status: Annotated[str, Query(pattern="^(open|all)$")] = "open",
) -> list[ManifestConflictPublic]:
    """Open conflicts (``status=all``: resolved ones too), oldest first, with the details in
    force (``kept``) and those the carrier proposed."""
    return [_public(c) for c in services.flights.manifest_conflicts(status == "open")]


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
