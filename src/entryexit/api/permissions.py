"""Every endpoint and the permission it needs: the one table the API enforces.

Roles map to permissions in :mod:`entryexit.domain.access`. An endpoint missing from this
table is refused to everyone (fail closed); ``PUBLIC`` endpoints need no key.
"""

from __future__ import annotations

from typing import Final

from entryexit.domain.access import Permission

PUBLIC: Final = "public"

ENDPOINT_PERMISSIONS: dict[tuple[str, str], Permission | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): Permission.METRICS_READ,
    ("POST", "/v1/flights"): Permission.FLIGHT_CREATE,
    ("GET", "/v1/flights/{flight_id}"): Permission.FLIGHT_READ,
    ("PUT", "/v1/flights/{flight_id}/manifest"): Permission.MANIFEST_WRITE,
    ("GET", "/v1/manifest-conflicts"): Permission.MANIFEST_CONFLICTS,
    ("POST", "/v1/manifest-conflicts/{conflict_id}/resolution"): Permission.MANIFEST_CONFLICTS,
    ("GET", "/v1/flights/{flight_id}/manifest"): Permission.FLIGHT_READ,
    ("POST", "/v1/documents/{issuing_state}/{number}/photos"): Permission.PHOTO_ENROL,
    ("POST", "/v1/documents/photos"): Permission.PHOTO_ENROL,
    ("POST", "/v1/documents/fingerprints"): Permission.FINGERPRINT_ENROL,
    ("POST", "/v1/fingerprint-verifications"): Permission.FINGERPRINT_VERIFY,
    ("POST", "/v1/flights/{flight_id}/fingerprint-searches"): Permission.FINGERPRINT_VERIFY,
    ("POST", "/v1/flights/{flight_id}/gallery"): Permission.GALLERY_STAGE,
    ("POST", "/v1/flights/{flight_id}/captures"): Permission.CAPTURE_SUBMIT,
    ("GET", "/v1/flights/{flight_id}/encounters"): Permission.ENCOUNTER_READ,
    ("GET", "/v1/flights/{flight_id}/outstanding"): Permission.ENCOUNTER_READ,
    ("POST", "/v1/flights/{flight_id}/opt-outs"): Permission.OPT_OUT_RECORD,
    ("POST", "/v1/verifications"): Permission.VERIFY,
    ("GET", "/v1/policies"): Permission.POLICY_READ,
    ("GET", "/v1/policies/current"): Permission.POLICY_READ,
    ("GET", "/v1/privacy/report"): Permission.PRIVACY_REPORT,
    ("GET", "/v1/reports/fairness"): Permission.PRIVACY_REPORT,
    ("POST", "/v1/erasures"): Permission.TRAVELER_ERASE,
    ("GET", "/v1/audit/events"): Permission.AUDIT_READ,
    ("GET", "/v1/audit/verification"): Permission.AUDIT_READ,
    ("GET", "/v1/travelers/{traveler_id}/crossings"): Permission.CROSSINGS_READ,
    ("PATCH", "/v1/admissions/{admission_id}"): Permission.ADMISSION_WRITE,
    ("GET", "/v1/reports/overstays"): Permission.OVERSTAY_REPORT,
    ("POST", "/v1/watchlist"): Permission.WATCHLIST_MANAGE,
    ("GET", "/v1/watchlist"): Permission.WATCHLIST_MANAGE,
    ("DELETE", "/v1/watchlist/{entry_id}"): Permission.WATCHLIST_MANAGE,
    ("POST", "/v1/watchlist/fingerprints"): Permission.WATCHLIST_MANAGE,
    ("GET", "/v1/alerts"): Permission.ALERT_READ,
    ("POST", "/v1/alerts/{alert_id}/disposition"): Permission.ALERT_DISPOSITION,
}
