"""What an audit checkpoint costs: signing, appending (with fsync) and verifying.

    .venv/bin/python benchmarks/bench_audit_checkpoints.py [--count 500]

Prints the wall and CPU time per checkpoint appended, the time to read and verify one, and
the bytes per line (the file grows by one line per interval while the log grows).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from entryexit.adapters.crypto.checkpoints import (
    CheckpointFile,
    Ed25519CheckpointSigner,
    new_checkpoint_seed,
    read_checkpoints,
)
from entryexit.domain.audit_checkpoints import Checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    count = parser.parse_args().count
    signer = Ed25519CheckpointSigner(new_checkpoint_seed)
    with tempfile.TemporaryDirectory() as directory:
        store = CheckpointFile(Path(directory) / "checkpoints.jsonl")
        wall, cpu = time.perf_counter(), time.process_time()
        for sequence in range(count):
            unsigned = Checkpoint(sequence, "ab" * 32, datetime.now(UTC))
            store.append(replace(unsigned, signature=signer.sign(unsigned.message())))
        append_wall = (time.perf_counter() - wall) / count * 1e3
        append_cpu = (time.process_time() - cpu) / count * 1e3
        started = time.perf_counter()
        valid = sum(
            signer.verify(line.checkpoint.message(), line.checkpoint.signature)
            for line in read_checkpoints(store.path)
            if line.checkpoint is not None
        )
        verify_wall = (time.perf_counter() - started) / count * 1e3
        size = store.path.stat().st_size / count
    print(
        f"append (sign + write + fsync): {append_wall:.3f} ms wall, {append_cpu:.3f} ms CPU"
        f" per checkpoint; read + verify: {verify_wall:.3f} ms per checkpoint"
        f" ({valid}/{count} valid); {size:.0f} bytes per line"
    )


if __name__ == "__main__":
    main()
