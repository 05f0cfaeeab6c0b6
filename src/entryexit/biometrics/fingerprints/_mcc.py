"""Minutia Cylinder-Code (MCC) local descriptors and the LSS-R global score, in NumPy.

Cappelli, Ferrara, Maltoni, "Minutia Cylinder-Code: a new representation and matching
technique for fingerprint recognition", IEEE TPAMI 32(12), 2010, with the parameters the
paper gives for its float cylinders and LSS-R consolidation. Nothing here is fitted to a data
set. Coordinates are pixels at 500 ppi with y pointing down; angles are radians in the same
frame (``(cos t, sin t)`` is the minutia direction in image coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]
from scipy.special import erf, expit  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float32]

# Cylinder (paper, Table 2).
RADIUS = 70.0
NS = 16
ND = 6
SIGMA_S = 28.0 / 3.0
SIGMA_D = 2.0 * math.pi / 9.0
MU_PSI = 0.01
TAU_PSI = 400.0
OMEGA = 50.0
MIN_VALID_CELLS = 0.75
MIN_NEIGHBOURS = 2
# Matching.
MIN_MATCHABLE_CELLS = 0.6
DELTA_THETA = math.pi / 2.0
MIN_NP = 4
MAX_NP = 12
MU_P = 20.0
TAU_P = 0.4
# Relaxation (LSS-R).
N_REL = 5
W_R = 0.5
MU_RHO = (5.0, math.pi / 12.0, math.pi / 12.0)
TAU_RHO = (-8.0 / 5.0, -30.0, -30.0)

_DELTA_S = 2.0 * RADIUS / NS
_DELTA_D = 2.0 * math.pi / ND
_GRID = (np.arange(NS, dtype=np.float64) - (NS - 1) / 2.0) * _DELTA_S
_GX, _GY = np.meshgrid(_GRID, _GRID, indexing="xy")
_CELL_OFFSETS = np.stack([_GX.ravel(), _GY.ravel()], axis=1)  # (NS*NS, 2)
_D_CENTRES = -math.pi + (np.arange(ND, dtype=np.float64) + 0.5) * _DELTA_D


def angle_diff(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """a - b wrapped to [-pi, pi)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.asarray((d + math.pi) % (2.0 * math.pi) - math.pi, dtype=np.float64)


def _sigmoid(v: npt.NDArray[np.float64], mu: float, tau: float) -> npt.NDArray[np.float64]:
    return np.asarray(expit(tau * (v - mu)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Cylinders:
    """The cylinders of one template: only the valid ones are kept."""

    xy: npt.NDArray[np.float64]  # (n, 2) positions of the minutiae with a valid cylinder
    theta: npt.NDArray[np.float64]  # (n,)
    values: FloatArray  # (n, NS*NS*ND), 0 in invalid cells
    valid: FloatArray  # (n, NS*NS*ND), 1.0 where the cell is valid
    sq: FloatArray  # (n, NS*NS*ND) squared values
    # Row of each kept cylinder's minutia in the array the cylinders were built from.
    index: npt.NDArray[np.intp]

    @property
    def count(self) -> int:
        return int(self.xy.shape[0])


def _hull_distance(
    xy: npt.NDArray[np.float64], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Distance of each point outside the convex hull of ``xy`` (0 inside)."""
    if xy.shape[0] < 3:
        return np.full(points.shape[0], np.inf)
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if hull.shape[0] < 3:
        return np.full(points.shape[0], np.inf)
    # Outward signed distance to each edge; for a convex polygon the max over edges is a
    # lower bound of the true outside distance and exact along edges' normals, which is
    # what a dilation by OMEGA needs to within a few pixels near the corners.
    a = hull
    b = np.roll(hull, -1, axis=0)
    edge = b - a
    length = np.hypot(edge[:, 0], edge[:, 1])
    length[length == 0] = 1.0
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1) / length[:, None]
    # Orient normals outward: the centroid must be on the inner side.
    centroid = hull.mean(axis=0)
    side = np.einsum("ij,ij->i", centroid[None, :] - a, normal)
    normal[side > 0] *= -1.0
    d = np.einsum("pk,ek->pe", points, normal) - np.einsum("ek,ek->e", a, normal)[None, :]
    return np.asarray(np.maximum(d.max(axis=1), 0.0), dtype=np.float64)


# Cylinders are built from at most this many minutiae, the most reliable first. A plain print
# has 30-80 (mindtct finds 36 on average in FVC2002, LEADER keeps at most 150); a template of
# 255 minutiae, which an ISO record may carry, costs O(n^2) to build and compare: seconds of
# CPU for a hostile request. Templates at or under the cap are unchanged.
MAX_CYLINDER_MINUTIAE = 150
# Cylinders computed at once: bounds the (chunk, n, NS*NS, 2) working arrays to a few MB.
_CHUNK = 16


def build_cylinders(minutiae: npt.NDArray[np.float64]) -> Cylinders:
    """Cylinders of ``minutiae`` ((n, >=3) array: x, y, theta[, kind, reliability]); over
    :data:`MAX_CYLINDER_MINUTIAE`, of the most reliable ones (column 4 where present)."""
    m = np.asarray(minutiae, dtype=np.float64)
    rows = np.arange(m.shape[0], dtype=np.intp)
    if m.shape[0] > MAX_CYLINDER_MINUTIAE:
        order = np.argsort(-m[:, 4], kind="stable") if m.shape[1] >= 5 else rows
        rows = np.sort(order[:MAX_CYLINDER_MINUTIAE])
        m = m[rows]
    n = m.shape[0]
    cells = NS * NS * ND
    if n == 0:
        empty = np.zeros((0, cells), dtype=np.float32)
        return Cylinders(
            np.zeros((0, 2)), np.zeros(0), empty, empty, empty, np.zeros(0, dtype=np.intp)
        )
    xy = m[:, :2]
    theta = m[:, 2]
    cos, sin = np.cos(theta), np.sin(theta)
    # Cell centres of every cylinder: (n, NS*NS, 2).
    rot = np.stack([np.stack([cos, -sin], axis=1), np.stack([sin, cos], axis=1)], axis=1)
    centres = xy[:, None, :] + np.einsum("nij,cj->nci", rot, _CELL_OFFSETS)
    hull_d = _hull_distance(xy, centres.reshape(-1, 2)).reshape(n, NS * NS)
    in_disc = np.hypot(_CELL_OFFSETS[:, 0], _CELL_OFFSETS[:, 1]) <= RADIUS
    valid_xy = (hull_d <= OMEGA) & in_disc[None, :]
    # Directional contributions: (n, n_t, ND).
    dtheta = angle_diff(theta[:, None], theta[None, :])  # theta_i - theta_t
    x = angle_diff(_D_CENTRES[None, None, :], dtheta[:, :, None])
    k = SIGMA_D * math.sqrt(2.0)
    cd = 0.5 * (erf((x + _DELTA_D / 2.0) / k) - erf((x - _DELTA_D / 2.0) / k))
    total = np.empty((n, NS * NS, ND), dtype=np.float64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        # Spatial contributions of every minutia t to the chunk's cells: (chunk, n_t, NS*NS).
        diff = centres[start:stop, None, :, :] - xy[None, :, None, :]
        d2 = np.einsum("itck,itck->itc", diff, diff)
        cs = np.exp(-d2 / (2.0 * SIGMA_S**2)) / (SIGMA_S * math.sqrt(2.0 * math.pi))
        cs[d2 > (3.0 * SIGMA_S) ** 2] = 0.0
        own = np.arange(start, stop)
        cs[own - start, own, :] = 0.0
        total[start:stop] = np.einsum("itc,itd->icd", cs, cd[start:stop])
    values = expit(TAU_PSI * (total.reshape(n, cells) - MU_PSI))
    valid = np.repeat(valid_xy, ND, axis=1).astype(np.float32)
    neighbours = (
        np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)) <= RADIUS + 3 * SIGMA_S
    ).sum(axis=1) - 1
    keep = (valid_xy.sum(axis=1) >= MIN_VALID_CELLS * in_disc.sum()) & (
        neighbours >= MIN_NEIGHBOURS
    )
    vals = (values * valid).astype(np.float32)[keep]
    return Cylinders(xy[keep], theta[keep], vals, valid[keep], vals * vals, rows[keep])


def local_similarities(a: Cylinders, b: Cylinders) -> npt.NDArray[np.float64]:
    """(na, nb) cylinder similarities (0 where not matchable)."""
    if a.count == 0 or b.count == 0:
        return np.zeros((a.count, b.count))
    na2 = a.sq @ b.valid.T  # |a restricted to b's valid cells|^2
    nb2 = a.valid @ b.sq.T
    dot = a.values @ b.values.T
    common = a.valid @ b.valid.T
    dist = np.sqrt(np.maximum(na2 + nb2 - 2.0 * dot, 0.0))
    denom = np.sqrt(na2) + np.sqrt(nb2)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 0, 1.0 - dist / denom, 0.0)
    s[common < MIN_MATCHABLE_CELLS * NS * NS * ND * _disc_fraction()] = 0.0
    s[np.abs(angle_diff(a.theta[:, None], b.theta[None, :])) > DELTA_THETA] = 0.0
    return np.asarray(s, dtype=np.float64)


def _disc_fraction() -> float:
    return float((np.hypot(_CELL_OFFSETS[:, 0], _CELL_OFFSETS[:, 1]) <= RADIUS).mean())


def _n_pairs(na: int, nb: int) -> int:
    z = 1.0 / (1.0 + math.exp(-TAU_P * (min(na, nb) - MU_P)))
    return MIN_NP + round(z * (MAX_NP - MIN_NP))


def lss_score(a: Cylinders, b: Cylinders, sim: npt.NDArray[np.float64] | None = None) -> float:
    """Local Similarity Sort: mean of the top n_P local similarities."""
    s = local_similarities(a, b) if sim is None else sim
    if s.size == 0:
        return 0.0
    n_p = min(_n_pairs(a.count, b.count), s.size)
    top = np.partition(s.ravel(), s.size - n_p)[s.size - n_p :]
    return float(top.mean())


def lsar_score(a: Cylinders, b: Cylinders) -> float:
    """Local Similarity Assignment with Relaxation (LSA-R): the one-to-one assignment of
    minutiae that maximises the sum of local similarities, relaxed for geometric consistency."""
    s = local_similarities(a, b)
    if s.size == 0:
        return 0.0
    rows, cols = linear_sum_assignment(-s)
    return _relaxed(a, b, s, rows, cols)


def lsar_pairs(a: Cylinders, b: Cylinders) -> tuple[tuple[int, int, float], ...]:
    """The minutia pairs behind :func:`lsar_score`: the (at most n_P) assigned pairs whose
    relaxed similarities make the score, as rows of the minutiae each side's cylinders were
    built from, with that relaxed similarity (0..1), most consistent first. There are n_P of
    them for a stranger too, but weak (their similarities are near 0). For display only: the
    score itself never computes them."""
    s = local_similarities(a, b)
    if s.size == 0:
        return ()
    rows, cols = linear_sum_assignment(-s)
    ia, ib, lam, best = _relaxation(a, b, s, rows, cols)
    return tuple((int(a.index[ia[k]]), int(b.index[ib[k]]), float(lam[k])) for k in best)


def lssr_score(a: Cylinders, b: Cylinders) -> float:
    """Local Similarity Sort with Relaxation (LSS-R): the top min(na, nb) local similarities."""
    s = local_similarities(a, b)
    if s.size == 0:
        return 0.0
    order = np.argsort(s.ravel())[::-1][: min(a.count, b.count)]
    rows, cols = np.unravel_index(order, s.shape)
    return _relaxed(a, b, s, rows, cols)


def _relaxed(
    a: Cylinders,
    b: Cylinders,
    s: npt.NDArray[np.float64],
    ia: npt.NDArray[np.intp],
    ib: npt.NDArray[np.intp],
) -> float:
    _, _, lam, best = _relaxation(a, b, s, ia, ib)
    return float(lam[best].sum() / _n_pairs(a.count, b.count))


def _relaxation(
    a: Cylinders,
    b: Cylinders,
    s: npt.NDArray[np.float64],
    ia: npt.NDArray[np.intp],
    ib: npt.NDArray[np.intp],
) -> tuple[
    npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.intp]
]:
    """The candidate pairs with a positive local similarity (``ia``, ``ib``), their relaxed
    similarities ``lam``, and ``best``: the positions in them of the (at most n_P) pairs that
    make the score, most efficient first."""
    n_p = _n_pairs(a.count, b.count)
    lam0 = s[ia, ib]
    positive = lam0 > 0
    ia, ib, lam0 = ia[positive], ib[positive], lam0[positive]
    n_r = int(lam0.shape[0])
    if n_r < 2:
        return ia, ib, lam0, np.arange(n_r, dtype=np.intp)
    pa, pb = a.xy[ia], b.xy[ib]
    ta, tb = a.theta[ia], b.theta[ib]
    da = np.hypot(*(pa[:, None, :] - pa[None, :, :]).transpose(2, 0, 1))
    db = np.hypot(*(pb[:, None, :] - pb[None, :, :]).transpose(2, 0, 1))
    d1 = np.abs(da - db)
    d2 = np.abs(
        angle_diff(angle_diff(ta[:, None], ta[None, :]), angle_diff(tb[:, None], tb[None, :]))
    )
    ra = np.arctan2(pa[None, :, 1] - pa[:, None, 1], pa[None, :, 0] - pa[:, None, 0])
    rb = np.arctan2(pb[None, :, 1] - pb[:, None, 1], pb[None, :, 0] - pb[:, None, 0])
    d3 = np.abs(angle_diff(angle_diff(ta[:, None], ra), angle_diff(tb[:, None], rb)))
    rho = (
        _sigmoid(d1, MU_RHO[0], TAU_RHO[0])
        * _sigmoid(d2, MU_RHO[1], TAU_RHO[1])
        * _sigmoid(d3, MU_RHO[2], TAU_RHO[2])
    )
    np.fill_diagonal(rho, 0.0)
    lam = lam0.copy()
    for _ in range(N_REL):
        lam = W_R * lam + (1.0 - W_R) * (rho @ lam) / (n_r - 1)
    efficiency = lam / lam0
    best = np.argsort(efficiency)[::-1][: min(n_p, n_r)]
    return ia, ib, lam, best
