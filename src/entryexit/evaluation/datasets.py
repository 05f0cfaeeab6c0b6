"""Labelled face photo collections (``person/image`` folder trees) and LFW pair lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from entryexit.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True, slots=True)
class LabelledImages:
    """Every image under ``root``, grouped by person (the folder name), sorted by name."""

    root: Path
    persons: dict[str, tuple[Path, ...]]

    @classmethod
    def scan(cls, data_dir: Path) -> LabelledImages:
        """Accept the lfw-dev layout (``DIR/images/person/*.jpg``) or any ``DIR/person/*``."""
        if not data_dir.is_dir():
            raise DatasetError(f"{data_dir} is not a directory")
        root = data_dir / "images" if (data_dir / "images").is_dir() else data_dir
        persons: dict[str, tuple[Path, ...]] = {}
        for person_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            images = tuple(
                sorted(
                    p
                    for p in person_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
            if images:
                persons[person_dir.name] = images
        if not persons:
            raise DatasetError(f"no person/image folders with JPEG or PNG images under {root}")
        return cls(root=root, persons=persons)

    def image_path(self, person: str, number: int) -> Path:
        """LFW naming: ``person/person_NNNN.jpg``."""
        path = self.root / person / f"{person}_{number:04d}.jpg"
        if not path.is_file():
            raise DatasetError(f"pair names an image that is not in the data set: {path.name}")
        return path

    def all_images(self) -> list[tuple[str, Path]]:
        return [(person, path) for person, paths in self.persons.items() for path in paths]

    @property
    def image_count(self) -> int:
        return sum(len(paths) for paths in self.persons.values())


def read_same_person_groups(path: Path) -> list[tuple[str, ...]]:
    """Names filed for one person under several folders: one group per line, names separated
    by tabs; ``#`` starts a comment. Used to mend known label errors in a data set, openly."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    groups = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        names = tuple(name.strip() for name in line.split("\t") if name.strip())
        if len(names) < 2:
            raise DatasetError(f"{path.name} line {number}: a group needs two or more names")
        groups.append(names)
    return groups


@dataclass(frozen=True, slots=True)
class Pair:
    fold: int
    person1: str
    image1: int
    person2: str
    image2: int

    @property
    def same(self) -> bool:
        return self.person1 == self.person2


def _parse_int(token: str, line_number: int, source: Path) -> int:
    try:
        return int(token)
    except ValueError:
        raise DatasetError(f"{source.name} line {line_number}: {token!r} is not a number") from None


def read_pairs(path: Path) -> list[Pair]:
    """Read lfw-dev's ``pairs-dev.tsv`` or the original LFW ``pairs.txt`` / ``pairsDevTest.txt``.

    ``pairs.txt`` starts with ``folds<TAB>n`` and holds, per fold, n matched lines
    (``name i j``) then n mismatched lines (``name1 i name2 j``).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the pairs file {path}") from exc
    rows = [(number, line.split()) for number, line in enumerate(lines, start=1) if line.strip()]
    if not rows:
        raise DatasetError(f"the pairs file {path} is empty")
    if rows[0][1][:2] == ["fold", "name1"]:
        return _read_tsv_pairs(rows[1:], path)
    return _read_lfw_pairs(rows, path)


def _read_tsv_pairs(rows: list[tuple[int, list[str]]], path: Path) -> list[Pair]:
    pairs = []
    for number, fields in rows:
        if len(fields) != 6:
            raise DatasetError(f"{path.name} line {number}: expected 6 columns, got {len(fields)}")
        fold, name1, image1, name2, image2, same = fields
        pair = Pair(
            fold=_parse_int(fold, number, path),
            person1=name1,
            image1=_parse_int(image1, number, path),
            person2=name2,
            image2=_parse_int(image2, number, path),
        )
        if pair.same != (same == "1"):
            raise DatasetError(f"{path.name} line {number}: 'same' disagrees with the names")
        pairs.append(pair)
    return pairs


def _read_lfw_pairs(rows: list[tuple[int, list[str]]], path: Path) -> list[Pair]:
    header = rows[0][1]
    header_numbers = [_parse_int(token, rows[0][0], path) for token in header]
    if len(header_numbers) == 2:
        _, per_class = header_numbers
        block = 2 * per_class
    elif len(header_numbers) == 1:
        block = 0  # a single fold (View 1 files)
    else:
        raise DatasetError(f"{path.name} line 1: expected 'folds pairs' or 'pairs' header")
    pairs = []
    for index, (number, fields) in enumerate(rows[1:]):
        fold = index // block + 1 if block else 1
        if len(fields) == 3:
            name, first, second = fields
            pairs.append(
                Pair(
                    fold,
                    name,
                    _parse_int(first, number, path),
                    name,
                    _parse_int(second, number, path),
                )
            )
        elif len(fields) == 4:
            name1, first, name2, second = fields
            pairs.append(
                Pair(
                    fold,
                    name1,
                    _parse_int(first, number, path),
                    name2,
                    _parse_int(second, number, path),
                )
            )
        else:
            raise DatasetError(f"{path.name} line {number}: expected 3 or 4 fields")
    return pairs


def draw_impostor_pairs(
    images: list[tuple[str, Path]], count: int, seed: int
) -> list[tuple[int, int]]:
    """``count`` distinct pairs of image indices of different persons, reproducibly."""
    if count <= 0:
        return []
    persons = np.array([person for person, _ in images])
    if np.unique(persons).size < 2:
        raise DatasetError("impostor pairs need at least two persons")
    total = len(images)
    _, per_person = np.unique(persons, return_counts=True)
    different_person_pairs = (total * (total - 1) - int((per_person * (per_person - 1)).sum())) // 2
    count = min(count, different_person_pairs)
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < count:
        first = rng.integers(0, total, size=count * 2)
        second = rng.integers(0, total, size=count * 2)
        for a, b in zip(first.tolist(), second.tolist(), strict=True):
            if persons[a] == persons[b]:
                continue
            chosen.add((min(a, b), max(a, b)))
            if len(chosen) == count:
                break
    return sorted(chosen)
