"""Kiosks, lane assignments, and kiosk opt-out requests.

A paired kiosk acts as a gate key of its carrier, so its row carries a MAC like an API key's
(``Sealer.row_mac``, keyed outside the database) over what it grants: its session token and
pairing code hashes, carrier, port, lane, pairing and revocation. A row whose MAC does not
verify is treated as absent (and logged, without personal data): a database writer without the
keys cannot plant a paired kiosk, move one to another carrier or lane, or un-revoke one.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from entryexit.adapters.storage.sealing import Sealer
from entryexit.adapters.storage.tables import (
    KioskCaptureNoticeRow,
    KioskDeviceRow,
    KioskOptOutRequestRow,
    LaneAssignmentRow,
)
from entryexit.domain.kiosk import KioskDevice, KioskOptOutRequest, LaneAssignment

logger = logging.getLogger(__name__)


def kiosk_device_mac(sealer: Sealer, row: KioskDeviceRow) -> str:
    # ``last_seen_at`` is left out: it is touched often and grants nothing.
    return sealer.row_mac(
        "kiosk_devices",
        row.id,
        row.token_hash,
        row.csrf_token,
        row.created_at,
        row.code_hash,
        row.code_expires_at,
        row.carrier,
        row.port,
        row.lane,
        row.paired_at,
        row.paired_by,
        row.session_issued_at,
        row.revoked_at,
    )


def _device(row: KioskDeviceRow) -> KioskDevice:
    return KioskDevice(
        id=row.id,
        token_hash=row.token_hash,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        code_hash=row.code_hash,
        code_expires_at=row.code_expires_at,
        carrier=row.carrier,
        port=row.port,
        lane=row.lane,
        paired_at=row.paired_at,
        paired_by=row.paired_by,
        session_issued_at=row.session_issued_at,
        revoked_at=row.revoked_at,
        last_seen_at=row.last_seen_at,
        pairing_network=row.pairing_network,
    )


def _request(row: KioskOptOutRequestRow) -> KioskOptOutRequest:
    return KioskOptOutRequest(
        id=row.id,
        device_id=row.device_id,
        port=row.port,
        lane=row.lane,
        flight_id=row.flight_id,
        requested_at=row.requested_at,
        notice_version=row.notice_version,
        language=row.language,
        handled_at=row.handled_at,
        handled_by=row.handled_by,
    )


def _assignment(row: LaneAssignmentRow) -> LaneAssignment:
    return LaneAssignment(row.port, row.lane, row.flight_id, row.assigned_at, row.assigned_by)


class SqlKioskRepository:
    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def _verified(self, row: KioskDeviceRow | None) -> KioskDevice | None:
        if row is None:
            return None
        if not self._sealer.mac_matches(row.mac, kiosk_device_mac(self._sealer, row)):
            logger.error(
                "a kiosk_devices row fails its integrity check and is refused (id %s)", row.id
            )
            return None
        return _device(row)

    def _update(self, device_id: str, **values: object) -> None:
        row = self._session.get(KioskDeviceRow, device_id)
        if row is None:
            return
        for name, value in values.items():
            setattr(row, name, value)
        row.mac = kiosk_device_mac(self._sealer, row)
        self._session.flush()

    def add_device(self, device: KioskDevice) -> None:
        row = KioskDeviceRow(
            id=device.id,
            token_hash=device.token_hash,
            csrf_token=device.csrf_token,
            created_at=device.created_at,
            code_hash=device.code_hash,
            code_expires_at=device.code_expires_at,
            pairing_network=device.pairing_network,
        )
        row.mac = kiosk_device_mac(self._sealer, row)
        self._session.add(row)
        self._session.flush()

    def get_device(self, device_id: str) -> KioskDevice | None:
        return self._verified(self._session.get(KioskDeviceRow, device_id))

    def device_by_token(self, token_hash: str) -> KioskDevice | None:
        return self._verified(
            self._session.scalar(
                select(KioskDeviceRow).where(KioskDeviceRow.token_hash == token_hash)
            )
        )

    def device_by_code(self, code_hash: str) -> KioskDevice | None:
        return self._verified(
            self._session.scalar(
                select(KioskDeviceRow).where(KioskDeviceRow.code_hash == code_hash)
            )
        )

    def devices(self) -> list[KioskDevice]:
        rows = self._session.scalars(
            select(KioskDeviceRow)
            .where(KioskDeviceRow.paired_at.is_not(None))
            .order_by(KioskDeviceRow.paired_at.desc(), KioskDeviceRow.id)
        )
        verified = (self._verified(row) for row in rows)
        return [device for device in verified if device is not None]

    def count_waiting(self, now: datetime, network: str | None = None) -> int:
        query = (
            select(func.count())
            .select_from(KioskDeviceRow)
            .where(KioskDeviceRow.paired_at.is_(None), KioskDeviceRow.code_expires_at > now)
        )
        if network is not None:
            query = query.where(KioskDeviceRow.pairing_network == network)
        return int(self._session.scalar(query) or 0)

    def waiting(self, now: datetime) -> list[KioskDevice]:
        rows = self._session.scalars(
            select(KioskDeviceRow)
            .where(KioskDeviceRow.paired_at.is_(None), KioskDeviceRow.code_expires_at > now)
            .order_by(KioskDeviceRow.created_at, KioskDeviceRow.id)
        )
        verified = (self._verified(row) for row in rows)
        return [device for device in verified if device is not None]

    def delete_waiting(self, device_id: str) -> int:
        result = self._session.execute(
            delete(KioskDeviceRow).where(
                KioskDeviceRow.id == device_id, KioskDeviceRow.paired_at.is_(None)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def delete_expired_codes(self, now: datetime) -> int:
        result = self._session.execute(
            delete(KioskDeviceRow).where(
                KioskDeviceRow.paired_at.is_(None), KioskDeviceRow.code_expires_at <= now
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def pair(
        self, device_id: str, carrier: str, port: str, lane: str, at: datetime, by: str
    ) -> None:
        self._update(
            device_id,
            carrier=carrier,
            port=port,
            lane=lane,
            paired_at=at,
            paired_by=by,
            code_hash=None,
            code_expires_at=None,
        )

    def issue_session(self, device_id: str, token_hash: str, at: datetime) -> None:
        self._update(device_id, token_hash=token_hash, session_issued_at=at, last_seen_at=at)

    def revoke(self, device_id: str, at: datetime) -> None:
        self._update(device_id, revoked_at=at)

    def touch(self, device_id: str, at: datetime) -> None:
        self._session.execute(
            update(KioskDeviceRow).where(KioskDeviceRow.id == device_id).values(last_seen_at=at)
        )

    def assign_lane(self, assignment: LaneAssignment) -> None:
        row = self._session.get(LaneAssignmentRow, (assignment.port, assignment.lane))
        if row is None:
            self._session.add(
                LaneAssignmentRow(
                    port=assignment.port,
                    lane=assignment.lane,
                    flight_id=assignment.flight_id,
                    assigned_at=assignment.assigned_at,
                    assigned_by=assignment.assigned_by,
                )
            )
        else:
            row.flight_id = assignment.flight_id
            row.assigned_at = assignment.assigned_at
            row.assigned_by = assignment.assigned_by
        self._session.flush()

    def lane_assignment(self, port: str, lane: str) -> LaneAssignment | None:
        row = self._session.get(LaneAssignmentRow, (port, lane))
        return None if row is None else _assignment(row)

    def lane_assignments(self) -> list[LaneAssignment]:
        rows = self._session.scalars(
            select(LaneAssignmentRow).order_by(LaneAssignmentRow.port, LaneAssignmentRow.lane)
        )
        return [_assignment(row) for row in rows]

    def add_opt_out_request(self, request: KioskOptOutRequest) -> None:
        self._session.add(
            KioskOptOutRequestRow(
                id=request.id,
                device_id=request.device_id,
                port=request.port,
                lane=request.lane,
                flight_id=request.flight_id,
                requested_at=request.requested_at,
                notice_version=request.notice_version,
                language=request.language,
            )
        )
        self._session.flush()

    def opt_out_requests(
        self, pending_only: bool, limit: int | None = None
    ) -> list[KioskOptOutRequest]:
        query = select(KioskOptOutRequestRow)
        if pending_only:
            query = query.where(KioskOptOutRequestRow.handled_at.is_(None))
        query = query.order_by(KioskOptOutRequestRow.requested_at.desc(), KioskOptOutRequestRow.id)
        if limit is not None:
            query = query.limit(limit)
        return [_request(row) for row in self._session.scalars(query)]

    def count_opt_out_requests(self, pending_only: bool, device_id: str | None = None) -> int:
        query = select(func.count()).select_from(KioskOptOutRequestRow)
        if pending_only:
            query = query.where(KioskOptOutRequestRow.handled_at.is_(None))
        if device_id is not None:
            query = query.where(KioskOptOutRequestRow.device_id == device_id)
        return int(self._session.scalar(query) or 0)

    def handle_opt_out_request(self, request_id: str, at: datetime, by: str) -> bool:
        result = self._session.execute(
            update(KioskOptOutRequestRow)
            .where(
                KioskOptOutRequestRow.id == request_id, KioskOptOutRequestRow.handled_at.is_(None)
            )
            .values(handled_at=at, handled_by=by)
        )
        return bool(getattr(result, "rowcount", 0))

    def record_capture_notice(
        self, capture_id: str, device_id: str, notice_version: str, language: str, at: datetime
    ) -> None:
        self._session.add(
            KioskCaptureNoticeRow(
                capture_id=capture_id,
                device_id=device_id,
                notice_version=notice_version,
                language=language,
                recorded_at=at,
            )
        )
        self._session.flush()

    def capture_notice(self, capture_id: str) -> tuple[str, str] | None:
        row = self._session.get(KioskCaptureNoticeRow, capture_id)
        return None if row is None else (row.notice_version, row.language)
