"""WSQ decoding in a short-lived child process.

The only maintained WSQ codec on PyPI (``wsq``, NBIS's C decoder behind a Pillow plugin)
faults on hostile input: a WSQ file with three bytes changed makes it write out of bounds
and kill the process (SIGSEGV), and its Python header parser raises arbitrary errors. The
service process serves every gate, kiosk and console of a port, so untrusted WSQ bytes are
never parsed in it: a child with its own memory and CPU limits parses and decodes them and
sends back the pixels, and a crash, an overrun or any error there is a corrupt image (422).
A child costs about 0.1 s; WSQ arrives from officers' scanners, not from gates.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import threading

import numpy as np
import numpy.typing as npt

from entryexit.errors import ImageDecodeError, ImageTooLargeError

# The child is given its limits before it reads a byte. Its answer is a 4-byte tag, the
# width and height, then (for "PIX!") width x height 8-bit grey pixels.
_CHILD = r"""
import io, resource, struct, sys
memory, cpu_seconds, max_pixels = (int(a) for a in sys.argv[1:4])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
data = sys.stdin.buffer.read()
from PIL import Image
import wsq
image = Image.open(io.BytesIO(data), formats=["WSQ"])
width, height = image.size
if width * height > max_pixels:
    sys.stdout.buffer.write(b"BIG!" + struct.pack("<II", width, height))
    sys.exit(0)
pixels = image.convert("L").tobytes()
sys.stdout.buffer.write(b"PIX!" + struct.pack("<II", width, height) + pixels)
"""

CHILD_MEMORY_BYTES = 1024 * 1024 * 1024
CHILD_CPU_SECONDS = 10
CHILD_TIMEOUT_SECONDS = 15.0
# At most this many children at once, so a burst of WSQ uploads queues, not forks a crowd.
_CHILDREN = threading.BoundedSemaphore(2)


def is_wsq(data: bytes) -> bool:
    """WSQ files start with the SOI marker FF A0."""
    return data[:2] == b"\xff\xa0"


def decode_wsq(data: bytes, max_pixels: int) -> npt.NDArray[np.uint8]:
    """The 8-bit grey pixels of the WSQ image ``data``, decoded in a child process."""
    with _CHILDREN:
        try:
            finished = subprocess.run(  # noqa: S603 - our interpreter, our script; data on stdin
                [
                    sys.executable,
                    "-I",
                    "-c",
                    _CHILD,
                    str(CHILD_MEMORY_BYTES),
                    str(CHILD_CPU_SECONDS),
                    str(max_pixels),
                ],
                input=data,
                capture_output=True,
                timeout=CHILD_TIMEOUT_SECONDS,
                env={},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ImageDecodeError("the WSQ image could not be decoded in time") from exc
    answer = finished.stdout
    if finished.returncode != 0 or len(answer) < 12:
        raise ImageDecodeError("the WSQ image is truncated or corrupt")
    tag = answer[:4]
    width, height = struct.unpack("<II", answer[4:12])
    if tag == b"BIG!":
        raise ImageTooLargeError(
            f"the fingerprint image is {width} x {height} pixels;"
            f" at most {max_pixels} pixels are accepted"
        )
    pixels = answer[12:]
    if tag != b"PIX!" or width * height == 0 or len(pixels) != width * height:
        raise ImageDecodeError("the WSQ image is truncated or corrupt")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width).copy()
