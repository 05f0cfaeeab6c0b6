"""Stays opened by entries and closed by exits; an open stay keeps its entry template sealed
under the traveler's data key, erased when the stay closes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import AdmissionRow
from entryexit.domain.admission import Admission, ExitLink
from entryexit.services.ports import NewAdmission


def admission_from_row(row: AdmissionRow) -> Admission:
    return Admission(
        id=row.id,
        traveler_id=row.traveler_id,
        admission_class=row.admission_class,
        admitted_on=row.admitted_on,
        admitted_until=row.admitted_until,
        entry_flight_id=row.entry_flight_id,
        exit_flight_id=row.exit_flight_id,
        exited_on=row.exited_on,
        link=ExitLink(row.link) if row.link else None,
        link_score=row.link_score,
    )


def _owner(admission_id: str) -> str:
    return f"admission:{admission_id}"


def _context(admission_id: str) -> bytes:
    return f"admission-template:{admission_id}".encode()


class SqlAdmissionRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def open(self, new: NewAdmission) -> bool:
        """Open a stay unless this traveler already has an open one (returns False)."""
        session = self._session
        existing = session.scalar(
            select(AdmissionRow.id)
            .where(AdmissionRow.traveler_id == new.traveler_id)
            .where(AdmissionRow.admitted_on.is_not(None))
            .where(AdmissionRow.exited_on.is_(None))
        )
        if existing is not None:
            return False
        sealed = (
            None
            if new.template is None
            else self._sealer.seal_for(
                session, new.traveler_id, _owner(new.id), new.template, _context(new.id)
            )
        )
        session.add(
            AdmissionRow(
                id=new.id,
                traveler_id=new.traveler_id,
                admission_class=new.admission_class,
                admitted_on=new.admitted_on,
                admitted_until=new.admitted_until,
                entry_encounter_id=new.entry_encounter_id,
                entry_flight_id=new.entry_flight_id,
                template=sealed.sealed if sealed else None,
                template_model=new.template_model,
                template_photos=new.template_photos,
                wrapped_key=sealed.wrapped_key if sealed else None,
                kek_id=sealed.kek_id if sealed else None,
                created_at=new.created_at,
            )
        )
        return True

    def open_of(self, traveler_id: str) -> Admission | None:
        session = self._session
        row = session.scalar(
            select(AdmissionRow)
            .where(AdmissionRow.traveler_id == traveler_id)
            .where(AdmissionRow.admitted_on.is_not(None))
            .where(AdmissionRow.exited_on.is_(None))
        )
        return None if row is None else admission_from_row(row)

    def template_photos(self, admission_id: str) -> int | None:
        """How many photos the stay's entry template fuses (None: unknown or no stay)."""
        row = self._session.get(AdmissionRow, admission_id)
        return None if row is None else row.template_photos

    def open_templates(
        self, model: str, exclude_traveler: str, limit: int
    ) -> list[tuple[str, bytes]]:
        """(admission id, template) of open stays made by ``model``, newest first."""
        session = self._session
        rows = session.scalars(
            select(AdmissionRow)
            .where(AdmissionRow.exited_on.is_(None))
            .where(AdmissionRow.admitted_on.is_not(None))
            .where(AdmissionRow.template.is_not(None))
            .where(AdmissionRow.template_model == model)
            .where(AdmissionRow.traveler_id != exclude_traveler)
            .order_by(AdmissionRow.admitted_on.desc())
            .limit(limit)
        ).all()
        result = []
        for row in rows:
            assert row.template is not None
            opened = self._sealer.open_for(
                session,
                row.traveler_id,
                _owner(row.id),
                row.template,
                row.wrapped_key,
                row.kek_id,
                _context(row.id),
            )
            if opened is not None:  # None: the traveler's key was shredded
                result.append((row.id, opened))
        return result

    def close(
        self,
        admission_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exit_traveler_id: str,
        exited_on: date,
        link: ExitLink,
        score: float | None,
    ) -> bool:
        """Close an open stay (its template goes with it); False if it was closed already."""
        session = self._session
        result = session.execute(
            update(AdmissionRow)
            .where(AdmissionRow.id == admission_id)
            .where(AdmissionRow.exited_on.is_(None))
            .values(
                exit_encounter_id=exit_encounter_id,
                exit_flight_id=exit_flight_id,
                exit_traveler_id=exit_traveler_id,
                exited_on=exited_on,
                link=link.value,
                link_score=score,
                template=None,
                wrapped_key=None,
                kek_id=None,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def record_exit_without_entry(
        self,
        record_id: str,
        traveler_id: str,
        exit_encounter_id: str,
        exit_flight_id: str,
        exited_on: date,
        now: datetime,
    ) -> None:
        session = self._session
        session.add(
            AdmissionRow(
                id=record_id,
                traveler_id=None,
                admission_class="",
                exit_encounter_id=exit_encounter_id,
                exit_flight_id=exit_flight_id,
                exit_traveler_id=traveler_id,
                exited_on=exited_on,
                created_at=now,
            )
        )

    def update(
        self, admission_id: str, admission_class: str, until: date | None
    ) -> Admission | None:
        session = self._session
        row = session.get(AdmissionRow, admission_id)
        if row is None or row.admitted_on is None:
            return None
        row.admission_class = admission_class
        row.admitted_until = until
        return admission_from_row(row)

    def of_traveler(self, traveler_id: str) -> list[Admission]:
        """Stays entered or left under this traveler id, oldest first."""
        session = self._session
        rows = session.scalars(
            select(AdmissionRow)
            .where(
                or_(
                    AdmissionRow.traveler_id == traveler_id,
                    AdmissionRow.exit_traveler_id == traveler_id,
                )
            )
            .order_by(AdmissionRow.created_at)
        ).all()
        return [admission_from_row(row) for row in rows]
