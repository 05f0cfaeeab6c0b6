"""Fingerprint verification accuracy and speed on FVC-style folders (``evaluate fingerprints``).

Layout: ``DATA/DB<n>_<set>/<finger>_<impression>.<tif|png|wsq>`` for images, or the same
names ending ``.iso`` (ISO/IEC 19794-2:2005 records) for minutiae records; a folder holds
one or the other. Every pair of samples inside one database is compared once.

Protocols, per database:

* FVC: genuine = every pair of impressions of one finger; impostor = the first impression
  of each finger against the first impression of every other finger.
* All-impostor extension: the same genuine pairs; impostor = every pair of impressions of
  different fingers (2,880 for 10 fingers x 8 impressions). FMR100, FMR1000 and ZeroFMR are
  the FNMR at FMR <= 1%, <= 0.1% and 0 on these.

A failure to enrol (too few minutiae) scores -1 against everything (the score file's
convention), so it counts as a false non-match and never as a false match.

Two-finger fusion has no two-finger data here: fingers ``2k-1`` and ``2k`` of a database
(in sorted order) stand in for two fingers of one person, impression ``i`` of both for
one capture. That is a stated limitation (different fingers of different people are more
independent than two fingers of one person).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import numpy.typing as npt

from entryexit.biometrics.fingerprints import (
    FingerFusionRule,
    FingerPosition,
    FingerprintEngine,
    FingerprintTemplate,
    MinutiaeFingerprintEngine,
    NoFingerprintError,
    decode_fingerprint,
    fuse_fingers,
)
from entryexit.documents.iso19794_2 import FingerMinutiaeRecord, parse_finger_minutiae_record
from entryexit.errors import DatasetError, InvalidInputError
from entryexit.evaluation.metrics import equal_error_rate, roc_curve, threshold_at_far
from entryexit.evaluation.plots import pyplot
from entryexit.evaluation.scorefile import ScoreLine, write_scores

logger = logging.getLogger(__name__)

# The sensors' stated resolutions (the data set's README); a scanner states its own.
FVC2002_PPI = {"DB1_B": 500.0, "DB2_B": 569.0, "DB3_B": 500.0, "DB4_B": 500.0}
DEFAULT_PPI = 500.0
FTE_SCORE = -1.0
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".wsq")
_NAME = re.compile(r"^(\d+)_(\d+)$")

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Sample:
    database: str
    finger: str
    impression: int
    path: Path

    @property
    def label(self) -> str:
        return f"{self.finger}_{self.impression}"


@dataclass(frozen=True, slots=True)
class FingerprintRun:
    data_dir: Path
    out_dir: Path
    ppi: dict[str, float] = field(default_factory=lambda: dict(FVC2002_PPI))


@dataclass(frozen=True, slots=True)
class Rates:
    fvc_eer: float
    eer: float
    fmr100: float
    fmr1000: float
    zero_fmr: float
    genuine: int
    fvc_impostor: int
    impostor: int


@dataclass(frozen=True, slots=True)
class DatabaseResult:
    database: str
    kind: str  # "images" | "iso19794-2"
    samples: int
    failures_to_enrol: int
    fused: Rates
    mcc: Rates
    bozorth: Rates | None  # None where the profile does not use bozorth3
    two_finger_mean: Rates | None  # None with fewer than two stand-in people
    two_finger_max: Rates | None
    extraction_ms_median: float
    prepare_ms_median: float
    comparison_ms_median: float


def _rates(
    genuine: Sequence[float], fvc_impostor: Sequence[float], impostor: Sequence[float]
) -> Rates:
    gen = np.asarray(genuine, dtype=np.float64)
    imp = np.asarray(impostor, dtype=np.float64)

    def fnmr_at(far: float) -> float:
        threshold = threshold_at_far(imp, far)
        return float(np.count_nonzero(gen < threshold) / gen.size)

    return Rates(
        fvc_eer=equal_error_rate(gen, np.asarray(fvc_impostor, dtype=np.float64)),
        eer=equal_error_rate(gen, imp),
        fmr100=fnmr_at(0.01),
        fmr1000=fnmr_at(0.001),
        zero_fmr=fnmr_at(0.0),
        genuine=int(gen.size),
        fvc_impostor=len(fvc_impostor),
        impostor=int(imp.size),
    )


def discover(data_dir: Path) -> dict[str, list[Sample]]:
    """The databases under ``data_dir`` and their samples (images or .iso records)."""
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir} is not a folder")
    databases: dict[str, list[Sample]] = {}
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir() and p.name.startswith("DB")):
        samples = []
        for path in sorted(folder.iterdir()):
            match = _NAME.match(path.stem)
            if match and path.suffix.lower() in (*IMAGE_SUFFIXES, ".iso"):
                samples.append(Sample(folder.name, match[1], int(match[2]), path))
        if samples:
            kinds = {s.path.suffix.lower() == ".iso" for s in samples}
            if len(kinds) > 1:
                raise DatasetError(f"{folder} mixes images and .iso records")
            databases[folder.name] = samples
    if not databases:
        raise DatasetError(f"no DB*/<finger>_<impression> images or records under {data_dir}")
    return databases


def _template(
    engine: MinutiaeFingerprintEngine, sample: Sample, ppi: float
) -> tuple[FingerprintTemplate | None, float]:
    data = sample.path.read_bytes()
    if sample.path.suffix.lower() == ".iso":
        start = time.process_time()
        record = parse_finger_minutiae_record(data)
        try:
            template = template_from_record(engine, record, 0, FingerPosition.UNKNOWN)
        except NoFingerprintError:
            return None, time.process_time() - start
        return template, time.process_time() - start
    image = decode_fingerprint(data, ppi)
    start = time.process_time()
    try:
        template = engine.extract(image, FingerPosition.UNKNOWN)
    except NoFingerprintError:
        return None, time.process_time() - start
    return template, time.process_time() - start


def template_from_record(
    engine: FingerprintEngine, record: FingerMinutiaeRecord, view: int, finger: FingerPosition
) -> FingerprintTemplate:
    """One view of a parsed ISO/IEC 19794-2 record as an engine template. The stated finger
    must agree with the record's unless the record says 0 (unknown). (Moves to the
    fingerprint enrolment service when that is wired; it needs both documents/ and the
    engine, which only services/evaluation may import together.)"""
    if not 0 <= view < len(record.views):
        raise InvalidInputError(f"the record has no view {view}")
    v = record.views[view]
    if v.finger_position not in (0, int(finger)):
        raise InvalidInputError(
            f"finger position {int(finger)} does not match the record's {v.finger_position}"
        )
    minutiae = np.array(
        [(m.x, m.y, m.angle, int(m.kind), m.quality) for m in v.minutiae], dtype=np.float64
    ).reshape(-1, 5)
    frame = (record.width, record.height, record.x_ppi, record.y_ppi)
    return engine.from_iso_minutiae(minutiae, frame, finger, v.quality or 255)


def evaluate_database(
    engine: MinutiaeFingerprintEngine,
    database: str,
    samples: Sequence[Sample],
    ppi: float,
    progress: Progress | None = None,
) -> tuple[DatabaseResult, list[ScoreLine]]:
    templates: dict[Sample, FingerprintTemplate | None] = {}
    extraction, preparation, comparison = [], [], []
    for sample in samples:
        template, seconds = _template(engine, sample, ppi)
        templates[sample] = template
        extraction.append(seconds)
        if template is not None:
            start = time.process_time()
            engine.prepare(template)
            preparation.append(time.process_time() - start)
        if progress:
            progress(1)
    pair_scores: dict[tuple[Sample, Sample], tuple[float, float, float]] = {}
    lines = []
    for a, b in combinations(samples, 2):
        ta, tb = templates[a], templates[b]
        if ta is None or tb is None:
            scores = (FTE_SCORE, FTE_SCORE, FTE_SCORE)
        else:
            start = time.process_time()
            detail = engine.scores(ta, tb)
            comparison.append(time.process_time() - start)
            bozorth = float("nan") if detail.bozorth is None else float(detail.bozorth)
            scores = (detail.fused, detail.mcc, bozorth)
        pair_scores[(a, b)] = scores
        lines.append(
            ScoreLine(
                f"{database}/{a.finger}",
                f"{database}/{b.finger}",
                f"{a.label}|{b.label}",
                scores[0],
            )
        )
        if progress:
            progress(1)

    def split(column: int) -> Rates:
        genuine, fvc, impostor = [], [], []
        for (a, b), s in pair_scores.items():
            if a.finger == b.finger:
                genuine.append(s[column])
            else:
                impostor.append(s[column])
                if a.impression == 1 and b.impression == 1:
                    fvc.append(s[column])
        return _rates(genuine, fvc, impostor)

    mean_rates, max_rates = _two_finger(pair_scores, samples)
    kind = "iso19794-2" if samples[0].path.suffix.lower() == ".iso" else "images"
    result = DatabaseResult(
        database=database,
        kind=kind,
        samples=len(samples),
        failures_to_enrol=sum(1 for t in templates.values() if t is None),
        fused=split(0),
        mcc=split(1),
        bozorth=None if any(np.isnan(s[2]) for s in pair_scores.values()) else split(2),
        two_finger_mean=mean_rates,
        two_finger_max=max_rates,
        extraction_ms_median=_median_ms(extraction),
        prepare_ms_median=_median_ms(preparation),
        comparison_ms_median=_median_ms(comparison),
    )
    return result, lines


def _median_ms(seconds: Sequence[float]) -> float:
    return float(np.median(seconds) * 1000.0) if seconds else float("nan")


def _two_finger(
    pair_scores: dict[tuple[Sample, Sample], tuple[float, float, float]],
    samples: Sequence[Sample],
) -> tuple[Rates | None, Rates | None]:
    """Fingers 2k-1 and 2k as one person's two fingers (see the module docstring)."""
    fingers = sorted({s.finger for s in samples})
    people = [(fingers[i], fingers[i + 1]) for i in range(0, len(fingers) - 1, 2)]
    by_key = {(s.finger, s.impression): s for s in samples}
    impressions = sorted({s.impression for s in samples})

    def score(f: str, i: int, g: str, j: int) -> float | None:
        a, b = by_key.get((f, i)), by_key.get((g, j))
        if a is None or b is None or a == b:
            return None
        value = pair_scores.get((a, b), pair_scores.get((b, a)))
        return None if value is None else max(value[0], 0.0)

    out: dict[FingerFusionRule, tuple[list[float], list[float], list[float]]] = {
        rule: ([], [], []) for rule in FingerFusionRule
    }
    for index_p, person_p in enumerate(people):
        for index_q, person_q in enumerate(people):
            if index_q < index_p:
                continue
            for i in impressions:
                for j in impressions:
                    if index_p == index_q and j <= i:
                        continue
                    first = score(person_p[0], i, person_q[0], j)
                    second = score(person_p[1], i, person_q[1], j)
                    if first is None or second is None:
                        continue
                    for rule, (gen, fvc, imp) in out.items():
                        fused = fuse_fingers([first, second], rule)
                        if index_p == index_q:
                            gen.append(fused)
                        else:
                            imp.append(fused)
                            if i == 1 and j == 1:
                                fvc.append(fused)
    mean = out[FingerFusionRule.MEAN]
    maximum = out[FingerFusionRule.MAX]
    if not mean[0] or not mean[1] or not mean[2]:
        return None, None
    return _rates(*mean), _rates(*maximum)


def _average(results: Sequence[DatabaseResult], attribute: str) -> dict[str, float] | None:
    rates = [asdict(getattr(r, attribute)) for r in results if getattr(r, attribute) is not None]
    if not rates:
        return None
    return {k: float(np.mean([r[k] for r in rates])) for k in rates[0]}


def run_fingerprint_evaluation(
    engine: MinutiaeFingerprintEngine,
    run: FingerprintRun,
    progress: Progress | None = None,
    total: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """Evaluate every database, write scores.txt, summary.json and det.png; return the summary."""
    databases = discover(run.data_dir)
    if total:
        total(sum(len(s) + len(s) * (len(s) - 1) // 2 for s in databases.values()))
    run.out_dir.mkdir(parents=True, exist_ok=True)
    results: list[DatabaseResult] = []
    all_lines: list[ScoreLine] = []
    for name, samples in databases.items():
        result, lines = evaluate_database(
            engine, name, samples, run.ppi.get(name, DEFAULT_PPI), progress
        )
        results.append(result)
        all_lines.extend(lines)
    write_scores(run.out_dir / "scores.txt", all_lines)
    _plot(all_lines, results, run.out_dir / "det.png")
    summary: dict[str, object] = {
        "engine": engine.key,
        "data": str(run.data_dir),
        "kind": results[0].kind,
        "protocols": {
            "fvc": "genuine: all impression pairs of a finger; impostor: first impressions of"
            " different fingers",
            "all_impostor": "genuine as FVC; impostor: every impression pair of different fingers",
            "two_finger": "fingers 2k-1 and 2k of a database stand in for one person's two"
            " fingers (limitation: different people's fingers)",
        },
        "average": {
            "fused": _average(results, "fused"),
            "mcc": _average(results, "mcc"),
            "bozorth": _average(results, "bozorth"),
            "two_finger_mean": _average(results, "two_finger_mean"),
            "two_finger_max": _average(results, "two_finger_max"),
            "failures_to_enrol": int(sum(r.failures_to_enrol for r in results)),
            "samples": int(sum(r.samples for r in results)),
            "extraction_ms_median": float(np.median([r.extraction_ms_median for r in results])),
            "prepare_ms_median": float(np.median([r.prepare_ms_median for r in results])),
            "comparison_ms_median": float(np.median([r.comparison_ms_median for r in results])),
        },
        "databases": [asdict(r) for r in results],
    }
    (run.out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _plot(lines: Sequence[ScoreLine], results: Sequence[DatabaseResult], path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    for result in results:
        prefix = f"{result.database}/"
        mine = [s for s in lines if s.reference_subject.startswith(prefix)]
        gen: npt.NDArray[np.float64] = np.array([s.score for s in mine if s.genuine])
        imp: npt.NDArray[np.float64] = np.array([s.score for s in mine if not s.genuine])
        curve = roc_curve(gen, imp)
        axes.loglog(
            np.clip(curve.far, 1e-4, 1.0),
            np.clip(curve.frr, 1e-4, 1.0),
            linewidth=1.3,
            label=f"{result.database} (EER {result.fused.eer:.2%})",
        )
    axes.set_xlabel("False match rate (all-impostor pairs, log scale)")
    axes.set_ylabel("False non-match rate (log scale)")
    axes.set_xlim(1e-4, 1.0)
    axes.set_ylim(1e-3, 1.0)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    axes.set_title(f"Fingerprints, {results[0].kind}: DET per database")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
