from __future__ import annotations

from datetime import UTC, datetime

import pytest

from entryexit.domain.model import CitizenshipClass
from entryexit.domain.policy import (
    DEFAULT_NOTICE,
    DEFAULT_OPERATING_POINT,
    DataKind,
    Participation,
    parse_policy,
    policy_in_force,
)
from entryexit.errors import InvalidInputError, NotFoundError
from entryexit.services.policies import SHIPPED_POLICIES, shipped_policy_text


def default_text() -> str:
    return shipped_policy_text("default.toml")


def test_the_shipped_policies_parse_with_their_operating_point() -> None:
    for name in SHIPPED_POLICIES:
        policy = parse_policy(shipped_policy_text(name))
        assert policy.matching.gallery_target_fpir == 0.001
        assert policy.as_dict()["matching"]["verification_target_far"] == 0.001
    policy = parse_policy(default_text())
    assert policy.participation(CitizenshipClass.CITIZEN, 40) is Participation.OPTIONAL
    assert policy.participation(CitizenshipClass.CITIZEN, 10) is Participation.EXEMPT
    assert policy.retention(DataKind.CAPTURE_IMAGES, CitizenshipClass.CITIZEN).total_seconds() == (
        12 * 3600
    )


def test_a_policy_without_a_matching_table_keeps_the_default_operating_point() -> None:
    text = default_text().split("[matching]")[0]
    assert parse_policy(text).matching == DEFAULT_OPERATING_POINT


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("gallery_target_fpir = 0.001", "gallery_target_fpir = 1.5"),
        ("gallery_target_fpir = 0.001", 'gallery_target_fpir = "low"'),
        ("gallery_target_fpir = 0.001", "gallery_target_fpr = 0.001"),
    ],
)
def test_bad_operating_points_are_refused(replacement: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match="matching"):
        parse_policy(default_text().replace(replacement, message))


def test_the_policy_in_force_is_the_latest_effective_one() -> None:
    first = parse_policy(default_text())
    later = parse_policy(
        default_text()
        .replace('version = "default-2"', 'version = "default-3"')
        .replace("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z")
    )
    assert policy_in_force([first, later], datetime(2026, 3, 1, tzinfo=UTC)) is first
    assert policy_in_force([first, later], datetime(2026, 7, 1, tzinfo=UTC)) is later
    with pytest.raises(NotFoundError):
        policy_in_force([first, later], datetime(2025, 1, 1, tzinfo=UTC))


def test_every_kind_of_personal_data_has_a_retention_in_the_shipped_default() -> None:
    policy = parse_policy(default_text())
    assert policy.version == "default-2"
    assert set(policy.retention_hours) == set(DataKind)
    table = default_text()
    for kind in (DataKind.MANIFEST_ENTRIES, DataKind.TRAVELER_DOCUMENTS, DataKind.ADMISSIONS):
        assert f"[retention.{kind.value}]" in table  # stated, not defaulted
    citizen = CitizenshipClass.CITIZEN
    assert policy.retention(DataKind.TRAVELER_DOCUMENTS, citizen).total_seconds() == 336 * 3600
    assert policy.as_dict()["retention_hours"]["admissions"]["foreign_national"] == 43800


def test_a_policy_without_biographic_retention_keeps_it_as_long_as_encounter_records() -> None:
    """Policies written before these kinds existed (the shipped noncitizens-mandatory one,
    versions already loaded in a store) still load, and keep biographic data no longer than
    the encounter records that name the traveler."""
    policy = parse_policy(shipped_policy_text("noncitizens-mandatory.toml"))
    foreign = CitizenshipClass.FOREIGN_NATIONAL
    encounters = policy.retention(DataKind.ENCOUNTER_RECORDS, foreign)
    assert encounters.total_seconds() == 131400 * 3600
    for kind in (DataKind.MANIFEST_ENTRIES, DataKind.TRAVELER_DOCUMENTS, DataKind.ADMISSIONS):
        assert policy.retention(kind, foreign) == encounters
        assert policy.retention(kind, None) == policy.retention(DataKind.ENCOUNTER_RECORDS, None)


def test_a_biographic_retention_is_checked_like_the_others() -> None:
    bad = default_text().replace(
        "[retention.admissions]\ncitizen = 336", "[retention.admissions]\ncitizen = -1"
    )
    assert bad != default_text()
    with pytest.raises(InvalidInputError, match=r"retention\.admissions"):
        parse_policy(bad)
    missing_class = default_text().replace(
        "[retention.manifest_entries]  # hours after the flight's scheduled departure\n"
        "citizen = 336\n",
        "[retention.manifest_entries]\n",
    )
    assert missing_class != default_text()
    with pytest.raises(InvalidInputError, match=r"retention\.manifest_entries\.citizen"):
        parse_policy(missing_class)


def test_the_shipped_default_policy_carries_a_notice_in_two_languages() -> None:
    notice = parse_policy(default_text()).notice
    assert notice.version == "notice-1"
    assert {"en", "fr"} <= set(notice.languages)

    assert notice.text("xx") == notice.text("en")
    assert "photo" in notice.text("en")
    assert "photo" in notice.text("fr")


def test_a_policy_without_a_notice_shows_the_generic_one() -> None:
    text = default_text().split("[notice]")[0]
    assert parse_policy(text).notice == DEFAULT_NOTICE


@pytest.mark.parametrize(
    ("notice", "message"),
    [
        ('[notice]\nversion = ""\n[notice.text]\nen = "x"', "notice.version"),
        ('[notice]\nversion = "n"\n[notice.text]\n', "at least one language"),
        ('[notice]\nversion = "n"\n[notice.text]\n"EN!" = "x"', "language code"),
        ('[notice]\nversion = "n"\n[notice.text]\nen = "  "', "notice.text.en"),
        ('[notice]\nversion = "n"\ncolour = "red"\n[notice.text]\nen = "x"', "unknown notice"),
    ],
)
def test_a_malformed_notice_is_refused_with_its_field_named(notice: str, message: str) -> None:
    text = default_text().split("[notice]")[0] + notice
    with pytest.raises(InvalidInputError, match=message):
        parse_policy(text)


def test_the_capture_burst_limit_has_a_default_and_is_checked() -> None:
    shipped = parse_policy(default_text())
    assert shipped.capture.max_frames == 3
    assert shipped.as_dict()["capture"] == {"max_frames": 3}
    # A policy written before bursts existed keeps the default.
    without = default_text().replace("[capture]", "[unused]").replace("max_frames = 3\n", "")
    without = without.replace("[unused]", "")
    assert parse_policy(without).capture.max_frames == 3
    assert (
        parse_policy(default_text().replace("max_frames = 3", "max_frames = 1")).capture.max_frames
        == 1
    )
    for bad in (
        "max_frames = 0",
        "max_frames = 11",
        'max_frames = "3"',
        "max_frames = true",
        "max_frames = 2.5",
        "max_frames = 3\nburst_ms = 200",
    ):
        with pytest.raises(InvalidInputError, match="capture"):
            parse_policy(default_text().replace("max_frames = 3", bad))
