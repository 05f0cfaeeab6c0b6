from __future__ import annotations

from pathlib import Path

import pytest

from entryexit.errors import DatasetError
from entryexit.evaluation.datasets import LabelledImages, draw_impostor_pairs, read_pairs


def test_reads_the_lfw_dev_tsv_format(tmp_path: Path) -> None:
    path = tmp_path / "pairs-dev.tsv"
    path.write_text(
        "fold\tname1\timage1\tname2\timage2\tsame\n1\tA\t1\tA\t2\t1\n2\tA\t1\tB\t3\t0\n"
    )
    pairs = read_pairs(path)
    assert [(p.fold, p.same) for p in pairs] == [(1, True), (2, False)]
    assert pairs[1].person2 == "B"
    assert pairs[1].image2 == 3


def test_reads_the_original_lfw_pairs_txt_with_folds(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("2\t1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t3\nC\t2\tD\t4\n")
    pairs = read_pairs(path)
    assert [p.fold for p in pairs] == [1, 1, 2, 2]
    assert [p.same for p in pairs] == [True, False, True, False]


@pytest.mark.parametrize(
    "content",
    [
        "",
        "fold\tname1\timage1\tname2\timage2\tsame\n1\tA\tx\tA\t2\t1\n",
        "1\t1\nA\t1\n",
        "fold\tname1\timage1\tname2\timage2\tsame\n1\tA\t1\tB\t2\t1\n",
    ],
)
def test_malformed_pairs_files_are_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(content)
    with pytest.raises(DatasetError):
        read_pairs(path)


def test_scan_accepts_both_layouts_and_refuses_empty(tmp_path: Path) -> None:
    for root in (tmp_path / "lfw-dev" / "images", tmp_path / "plain"):
        (root / "Ann").mkdir(parents=True)
        (root / "Ann" / "Ann_0001.jpg").write_bytes(b"x")
    assert LabelledImages.scan(tmp_path / "lfw-dev").persons.keys() == {"Ann"}
    assert LabelledImages.scan(tmp_path / "plain").image_count == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError):
        LabelledImages.scan(tmp_path / "empty")


def test_impostor_draw_is_reproducible_and_never_pairs_one_person() -> None:
    images = [(person, Path(f"{person}{i}")) for person in "ABCD" for i in range(3)]
    first = draw_impostor_pairs(images, 30, seed=7)
    assert first == draw_impostor_pairs(images, 30, seed=7)
    assert len(set(first)) == 30
    assert all(images[a][0] != images[b][0] for a, b in first)
    # Only 54 different-person pairs exist; asking for more returns them all.
    assert len(draw_impostor_pairs(images, 1000, seed=1)) == 54
