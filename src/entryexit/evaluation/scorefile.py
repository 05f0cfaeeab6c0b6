"""Four-column score files, as biometric toolkits write them.

Each line: ``reference_subject probe_subject probe_label score``. For verification pairs the
probe label names both images (``image1|image2``); a failure to enrol is written with the
score the protocol assigned it (the lowest possible, -1), so a rerun reads the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from entryexit.errors import DatasetError


@dataclass(frozen=True, slots=True)
class ScoreLine:
    reference_subject: str
    probe_subject: str
    probe_label: str
    score: float

    @property
    def genuine(self) -> bool:
        return self.reference_subject == self.probe_subject


def write_scores(path: Path, lines: Iterable[ScoreLine]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            fields = (line.reference_subject, line.probe_subject, line.probe_label)
            handle.write(f"{' '.join(fields)} {line.score:.6f}\n")
            count += 1
    return count


def read_scores(path: Path) -> list[ScoreLine]:
    lines = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            fields = raw.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise DatasetError(f"{path.name} line {number}: expected 4 columns")
            try:
                score = float(fields[3])
            except ValueError:
                raise DatasetError(f"{path.name} line {number}: score is not a number") from None
            lines.append(ScoreLine(fields[0], fields[1], fields[2], score))
    return lines
