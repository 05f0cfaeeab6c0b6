"""Thresholds of a fingerprint profile's one-finger score for target false accept rates.

    .venv/bin/python benchmarks/fingerprint_calibration.py --scores DIR/scores.txt

``scores.txt`` is the score file of ``entryexit evaluate fingerprints`` (4 columns: the two
fingers' labels, the impressions, the score); a pair is genuine when its two labels agree.
The rule of ``biometrics/fingerprints/_calibration.py``: over every different-finger pair,
the lowest threshold (rounded up to 4 decimals: the LEADER profiles' raw MCC scores of
impostors stay under 0.06) that at most ``floor(FAR x impostors)`` impostor scores reach;
where that allows at most one pair (1e-4 on 11,520 pairs), just above the largest impostor
score instead, which is not a measured rate.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, required=True)
    parser.add_argument("--far", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    args = parser.parse_args()
    genuine: list[float] = []
    impostor: list[float] = []
    for line in args.scores.read_text().splitlines():
        first, second, _, score = line.split()
        (genuine if first == second else impostor).append(float(score))
    g, i = np.array(genuine), np.sort(np.array(impostor))[::-1]
    print(f"{g.size} genuine, {i.size} impostor pairs; largest impostor score {i[0]:.4f}")
    print("target FAR | impostors allowed | threshold | impostors at or above | FNMR")
    for far in args.far:
        allowed = math.floor(far * i.size)
        # The (allowed+1)-th largest impostor score must fall below the threshold.
        below = i[allowed] if allowed >= 2 else i[0]
        threshold = math.floor(below * 10_000.0 + 1.0) / 10_000.0
        above = int((i >= threshold).sum())
        fnmr = float((g < threshold).mean())
        print(f"{far:g} | {allowed} | {threshold:.4f} | {above} | {100 * fnmr:.1f}%")


if __name__ == "__main__":
    main()
