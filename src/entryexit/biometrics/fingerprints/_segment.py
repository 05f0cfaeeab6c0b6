"""Foreground segmentation, to drop the false minutiae mindtct finds where ridges end at the
edge of the print.

The ridge area is where the local grey-level standard deviation (17 x 17 px window at
500 ppi, about two ridge periods) exceeds a quarter of its 95th percentile over the image;
small specks are opened away, gaps closed, only the largest region kept, and the region is
eroded by :data:`BORDER_MARGIN` pixels. Minutiae outside it are dropped. One setting for
every sensor (the 95th percentile makes it contrast-independent).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

WINDOW = 17
RELATIVE_THRESHOLD = 0.25
BORDER_MARGIN = 12


def foreground_mask(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """The ridge area eroded by :data:`BORDER_MARGIN`: where mindtct's minutiae are kept."""
    region = ridge_region(pixels)
    size = 2 * BORDER_MARGIN + 1
    eroded = cv2.erode(
        region, np.ones((size, size), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
    )
    return np.asarray(eroded, dtype=bool)


def ridge_region(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The print's ridge area (1) against the background (0), not eroded."""
    grey = pixels.astype(np.float32)
    mean = cv2.blur(grey, (WINDOW, WINDOW))
    variance = np.maximum(cv2.blur(grey * grey, (WINDOW, WINDOW)) - mean * mean, 0.0)
    deviation = np.sqrt(variance)
    top = float(np.percentile(deviation, 95))
    if top <= 0.0:
        return np.zeros(pixels.shape, dtype=np.uint8)
    raw = (deviation > RELATIVE_THRESHOLD * top).astype(np.uint8)
    opened = cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((9, 9), np.uint8))
    closed = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, np.ones((21, 21), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(closed)
    if count > 1:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        closed = (labels == largest).astype(np.uint8)
    return np.asarray(closed, dtype=np.uint8)


def ridge_box(pixels: npt.NDArray[np.uint8], margin: int) -> tuple[int, int, int, int] | None:
    """Rows and columns (top, bottom, left, right; end-exclusive) of the ridge area widened
    by ``margin`` pixels within the image, or None when there is no ridge area."""
    rows, cols = np.nonzero(ridge_region(pixels))
    if rows.size == 0:
        return None
    height, width = pixels.shape
    return (
        max(0, int(rows.min()) - margin),
        min(height, int(rows.max()) + 1 + margin),
        max(0, int(cols.min()) - margin),
        min(width, int(cols.max()) + 1 + margin),
    )


def inside(mask: npt.NDArray[np.bool_], xy: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which of the points ``xy`` (n, 2) fall inside ``mask``."""
    if xy.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    height, width = mask.shape
    cols = np.clip(np.rint(xy[:, 0]).astype(np.intp), 0, width - 1)
    rows = np.clip(np.rint(xy[:, 1]).astype(np.intp), 0, height - 1)
    return np.asarray(mask[rows, cols], dtype=bool)
