"""CPU of the face engine per request image, by size and by the kind it is decoded as: the
1:1 document photo (a gate's reference photo: 16 MP before session 9, a 4 MP document photo
since) and the kiosk's preview frame (a gate frame's 12.6 MP before, a 1 MP preview since).

Each image is an lfw-dev face enlarged to the size named (PNG, or JPEG at quality 10 for the
preview, as probe s9 D1 sent them). CPU is this process's ``time.process_time`` (all
threads), the minimum of ``--repeats`` runs; a refused image's cost is the refusal's.

    .venv/bin/python benchmarks/bench_image_kinds.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PIL import Image

from entryexit.biometrics import FaceEngine
from entryexit.biometrics.decode import ImageKind
from entryexit.biometrics.engine import EngineSettings
from entryexit.config import Settings
from entryexit.errors import EntryExitError

LFW = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lfw-dev" / "images"


def _image(face: Image.Image, size: tuple[int, int], fmt: str, quality: int = 90) -> bytes:
    out = io.BytesIO()
    resized = face.resize(size, Image.Resampling.BILINEAR)
    if fmt == "JPEG":
        resized.save(out, "JPEG", quality=quality)
    else:
        resized.save(out, "PNG")
    return out.getvalue()


def _cpu(call: Callable[[], object], repeats: int) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(repeats):
        start = time.process_time()
        try:
            call()
            outcome = "ok"
        except EntryExitError as exc:
            outcome = f"refused ({exc.code})"
        best = min(best, time.process_time() - start)
    return best, outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    face = Image.open(LFW / "Colin_Powell" / "Colin_Powell_0002.jpg").convert("RGB")
    engine = FaceEngine.from_model_dir(Settings().resolved_model_dir, EngineSettings())
    engine.analyse(_image(face, (250, 250), "PNG"))  # warm-up
    print(f"load average {os.getloadavg()[0]:.1f}; CPU s, min of {args.repeats}")
    print("1:1 document photo (engine.analyse):")
    for size in ((4000, 4000), (2560, 1920), (2048, 1536), (1600, 1200), (1024, 768)):
        data = _image(face, size, "PNG")
        for kind in (ImageKind.REFERENCE_PHOTO, ImageKind.DOCUMENT_PHOTO):
            cpu, outcome = _cpu(partial(engine.analyse, data, kind=kind), args.repeats)
            label = f"{size[0]}x{size[1]} PNG {len(data) // 1024} KB as {kind.value}"
            print(f"  {label:<48} {cpu:6.3f}  {outcome}")
    for size in ((4000, 3000), (2048, 1536)):
        data = _image(face, size, "JPEG")
        for kind in (ImageKind.REFERENCE_PHOTO, ImageKind.DOCUMENT_PHOTO):
            cpu, outcome = _cpu(partial(engine.analyse, data, kind=kind), args.repeats)
            label = f"{size[0]}x{size[1]} JPEG {len(data) // 1024} KB as {kind.value}"
            print(f"  {label:<48} {cpu:6.3f}  {outcome}")
    print("kiosk preview (engine.check_frame):")
    for size in ((4096, 3072), (1280, 960), (1024, 1024), (480, 480)):
        data = _image(face, size, "JPEG", quality=10)
        for kind in (ImageKind.GATE_FRAME, ImageKind.PREVIEW):
            cpu, outcome = _cpu(partial(engine.check_frame, data, 1.0, kind), args.repeats)
            label = f"{size[0]}x{size[1]} JPEG q10 {len(data) // 1024} KB as {kind.value}"
            print(f"  {label:<48} {cpu:6.3f}  {outcome}")


if __name__ == "__main__":
    main()
