from __future__ import annotations

import numpy as np
import pytest

from entryexit.biometrics.detect import Detection, choose_subject
from entryexit.errors import NoFaceError


def face(x: float, y: float, size: float, score: float = 0.9) -> Detection:
    landmarks = np.array(
        [[x + 0.3 * size, y + 0.4 * size], [x + 0.7 * size, y + 0.4 * size]] + [[x, y]] * 3
    )
    return Detection(x=x, y=y, width=size, height=size, landmarks=landmarks, score=score)


def test_the_central_face_wins_over_a_slightly_larger_one_at_the_edge() -> None:
    central = face(270, 190, 100)
    edge = face(0, 0, 120, score=0.99)
    choice = choose_subject([edge, central], 640, 480)
    assert choice.subject is central
    assert choice.others == (edge,)


def test_a_much_larger_face_wins_over_a_small_central_one() -> None:
    small_central = face(310, 230, 20)
    traveler = face(180, 100, 260)
    assert choose_subject([small_central, traveler], 640, 480).subject is traveler


def test_no_face_is_an_error() -> None:
    with pytest.raises(NoFaceError):
        choose_subject([], 640, 480)


def test_inter_eye_distance() -> None:
    assert face(0, 0, 100).inter_eye_distance == pytest.approx(40.0)
