"""``entryexit serve`` with the face model's answers memoized: what a capture costs the service
outside the models (issue 17). A benchmark tool, never a product path.

The real engine analyses each distinct frame once; a frame sent again gets the same analysis
from memory. Everything else is the service as ``entryexit serve`` runs it: the same settings,
wiring, storage, sealing, audit chain, HTTP server and connection guard. After a warm-up pass
over the frames, the service's CPU a capture is the request path's alone.

    PYTHONPATH=src .venv/bin/python benchmarks/serve_memoized_model.py   (env as the service)

``bench_service.py --memoized-model`` starts it in place of ``entryexit serve`` and reports the
service's CPU a capture outside the models.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Sequence

from entryexit.api.observability import configure_logging
from entryexit.biometrics import FaceEngine
from entryexit.biometrics.decode import ALLOWED_FORMATS, ImageKind
from entryexit.biometrics.engine import FaceAnalysis
from entryexit.biometrics.fusion import BurstAnalysis
from entryexit.bootstrap import build_face_engine, build_services, check_key_dir
from entryexit.cli._common import load_settings
from entryexit.cli.connections import guard_for
from entryexit.cli.serve import draining_server, freeze_startup_heap, server_config
from entryexit.web.app import create_service_app


class MemoizedCaptures:
    """The engine, with each distinct capture frame analysed once (by its SHA-256)."""

    def __init__(self, engine: FaceEngine) -> None:
        self._engine = engine
        self._analyses: dict[bytes, FaceAnalysis] = {}
        self._lock = threading.Lock()
        self.model = engine.model
        self.dimension = engine.dimension
        self.recipe = engine.recipe
        self.recognizer = engine.recognizer

    def __getattr__(self, name: str) -> object:
        # Everything else (reference photos, bursts, frame checks) is the engine's own.
        return getattr(self._engine, name)

    def analyse_reference(
        self,
        data: bytes,
        formats: frozenset[str] = ALLOWED_FORMATS,
        kind: ImageKind = ImageKind.REFERENCE_PHOTO,
    ) -> FaceAnalysis:
        return self._engine.analyse_reference(data, formats, kind)

    def analyse_burst(
        self,
        frames: Sequence[bytes],
        limit: int,
        formats: frozenset[str] = ALLOWED_FORMATS,
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> BurstAnalysis:
        return self._engine.analyse_burst(frames, limit, formats, kind)

    def analyse(
        self,
        data: bytes,
        formats: frozenset[str] = ALLOWED_FORMATS,
        kind: ImageKind = ImageKind.GATE_FRAME,
    ) -> FaceAnalysis:
        digest = hashlib.sha256(data).digest()
        with self._lock:
            known = self._analyses.get(digest)
        if known is not None:
            return known
        analysis = self._engine.analyse(data, formats, kind)
        with self._lock:
            self._analyses[digest] = analysis
        return analysis


def main() -> int:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    check_key_dir(settings)
    services = build_services(settings, engine=MemoizedCaptures(build_face_engine(settings)))
    token = services.keys.create_first_admin()
    if token is not None:
        print(f"First start: created an admin API key.\n  {token}", flush=True)
    app = create_service_app(services, jobs=True)
    config = server_config(
        app,
        guard_for(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
    )
    freeze_startup_heap()
    draining_server(config, app, 0.0).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
