"""Face and finger fusion on chimeric persons: lfw-dev face pairs x FVC2002 finger pairs.

    OMP_NUM_THREADS=1 .venv/bin/entryexit evaluate lfw --data ../shared/data/lfw-dev \\
        --out /tmp/prints-console/face --reference-recipe --impostors 20000 --threads 1
    OMP_NUM_THREADS=1 .venv/bin/entryexit evaluate fingerprints \\
        --data ../shared/data/fvc2002-b --out /tmp/prints-console/fingers
    .venv/bin/python benchmarks/eval_face_finger_fusion.py \\
        --faces /tmp/prints-console/face/scores.txt \\
        --fingers /tmp/prints-console/fingers/scores.txt

No data set has a face and a fingerprint of the same people, so a *chimeric* person is made
by pairing a face comparison with a finger comparison at random: a genuine face pair with a
genuine finger pair, an impostor face pair with an impostor finger pair. That is sound only
because the two modalities are independent given who the person is; it says nothing about
people whose face and prints are both hard.

The rule measured is the service's (``domain.fingerprints.combine_face_and_finger``): each
score mapped to its rarity among impostors (-log10 of the false match rate at which it would
be the threshold, from the engines' calibration tables), summed. The tables were calibrated on
these same score files (the face table on lfw-dev, the finger table on FVC2002 DB1-4_B): the
figures are in-sample. Compared with the fingers alone, the face alone, and the plain mean of
the two raw scores. Each figure is the mean over ``--draws`` random pairings.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import numpy.typing as npt

from entryexit.biometrics.fingerprints import FINGERPRINT_CALIBRATION
from entryexit.bootstrap import build_face_engine, operating_thresholds
from entryexit.config import Settings
from entryexit.domain.fingerprints import combined_target, impostor_evidence

Scores = npt.NDArray[np.float64]


def read_scores(path: Path) -> tuple[Scores, Scores]:
    """(genuine, impostor) scores of a 4-column score file (claimed, real, label, score)."""
    genuine: list[float] = []
    impostor: list[float] = []
    for line in path.read_text().splitlines():
        claimed, real, _, score = line.split()
        (genuine if claimed == real else impostor).append(float(score))
    return np.array(genuine), np.array(impostor)


def rates(genuine: Scores, impostor: Scores) -> dict[str, float]:
    """EER and FNMR at FMR 1e-2 and 1e-3 (thresholds from the impostor scores)."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    fmr = 1.0 - np.searchsorted(np.sort(impostor), thresholds, side="left") / len(impostor)
    fnmr = np.searchsorted(np.sort(genuine), thresholds, side="left") / len(genuine)
    crossing = int(np.argmin(np.abs(fmr - fnmr)))
    found = {"EER": float((fmr[crossing] + fnmr[crossing]) / 2)}
    for target in (1e-2, 1e-3):
        allowed = fmr <= target
        found[f"FNMR@FMR{target:g}"] = float(fnmr[allowed].min()) if allowed.any() else 1.0
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True)
    parser.add_argument("--fingers", type=Path, required=True)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    settings = Settings()
    face_engine = build_face_engine(settings)
    calibration = operating_thresholds(settings, face_engine).calibration
    if calibration is None:
        raise SystemExit("the installed face recipe has no calibration")
    face_table = calibration.verification
    finger_table = FINGERPRINT_CALIBRATION["nbis-mcc-v1"]
    face_genuine, face_impostor = read_scores(args.faces)
    finger_genuine, finger_impostor = read_scores(args.fingers)
    genuine_n = min(len(face_genuine), len(finger_genuine))
    impostor_n = min(len(face_impostor), len(finger_impostor))

    def evidence(scores: Scores, table: dict[float, float]) -> Scores:
        return np.array([impostor_evidence(float(s), table) for s in scores])

    rng = np.random.default_rng(args.seed)
    results: dict[str, list[dict[str, float]]] = {}
    operating: dict[float, list[tuple[float, float]]] = {}
    for _ in range(args.draws):
        fg = rng.choice(face_genuine, genuine_n, replace=False)
        pg = rng.choice(finger_genuine, genuine_n, replace=False)
        fi = rng.choice(face_impostor, impostor_n, replace=False)
        pi = rng.choice(finger_impostor, impostor_n, replace=False)
        rules = {
            "fingers alone (one finger)": (pg, pi),
            "face alone": (fg, fi),
            "mean of raw scores": ((fg + pg) / 2, (fi + pi) / 2),
            "sum of impostor evidence (the service's rule)": (
                evidence(fg, dict(face_table)) + evidence(pg, dict(finger_table)),
                evidence(fi, dict(face_table)) + evidence(pi, dict(finger_table)),
            ),
        }
        for name, (genuine, impostor) in rules.items():
            results.setdefault(name, []).append(rates(genuine, impostor))
        # The point the officer is shown: the sum impostors reach at the policy's 1e-3, and,
        # for comparison, the naive reading of the sum (3 decades, as if the rates were one).
        fused_genuine, fused_impostor = rules["sum of impostor evidence (the service's rule)"]
        for level in (combined_target(1e-3), 3.0):
            operating.setdefault(level, []).append(
                ((fused_impostor >= level).mean(), (fused_genuine < level).mean())
            )

    print(
        f"chimeric persons: {genuine_n} genuine and {impostor_n} impostor pairs a draw,"
        f" {args.draws} draws (seed {args.seed}); face table {dict(face_table)},"
        f" finger table {dict(finger_table)}"
    )
    print(f"{'rule':48} {'EER %':>7} {'FNMR@1e-2 %':>12} {'FNMR@1e-3 %':>12}")
    for name, draws in results.items():
        means = {k: 100 * statistics.mean(d[k] for d in draws) for k in draws[0]}
        print(
            f"{name:48} {means['EER']:7.2f} {means['FNMR@FMR0.01']:12.2f}"
            f" {means['FNMR@FMR0.001']:12.2f}"
        )
    for level, points in operating.items():
        fmr = 100 * statistics.mean(f for f, _ in points)
        fnmr = 100 * statistics.mean(f for _, f in points)
        print(f"the service's sum at {level:.2f}: FMR {fmr:.3f}%, FNMR {fnmr:.2f}%")


if __name__ == "__main__":
    main()
