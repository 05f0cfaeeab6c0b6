"""Score-level fusion of SFace with dlib's ResNet: is a second model worth its cost?

Not part of the product (dlib is not a dependency): this measures what fusing dlib's
128-D descriptor (``face_recognition_models`` weights, ``dlib-bin``) with SFace would buy on
the open-set protocol, and what it costs per capture.

    .venv/bin/pip install dlib-bin face-recognition-models
    .venv/bin/python benchmarks/dlib_fusion.py --data ../shared/data/lfw-dev \\
        --same-person benchmarks/lfw-dev-same-person.tsv

Fusion of cosine scores s = w * s_sface + (1 - w) * s_dlib is the dot product of the
normalised concatenation [sqrt(w) v_sface, sqrt(1 - w) v_dlib], so it fits the gallery's
matrix product unchanged; dlib sees the YuNet subject's box, refined by dlib's own HOG
detector when that finds the face (its shape predictor is trained on HOG boxes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dlib_descriptors import describe_all
from entryexit.biometrics.compare import l2_normalise
from entryexit.bootstrap import build_face_engine
from entryexit.config import Settings
from entryexit.evaluation.datasets import LabelledImages, read_same_person_groups
from entryexit.evaluation.embedding import REFERENCE_RECIPE, embed_files_cached
from entryexit.evaluation.gallery import Embeddings, GalleryRun, run_draw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--same-person", type=Path)
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=Path("evaluation-cache"))
    args = parser.parse_args()
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError:
        print("needs dlib-bin and face-recognition-models (pip install them)", file=sys.stderr)
        return 2
    engine = build_face_engine(Settings(engine_workers=2))
    dataset = LabelledImages.scan(args.data)
    images = dataset.all_images()
    paths = [path for _, path in images]
    captures = embed_files_cached(engine, paths, args.cache, threads=2)
    references = embed_files_cached(engine, paths, args.cache, 2, recipe=REFERENCE_RECIPE)

    dlib_ms: list[float] = []
    dlib_vectors = describe_all(engine, paths, 2, dlib_ms)

    identity = {name: name for name in dataset.persons}
    if args.same_person:
        for group in read_same_person_groups(args.same_person):
            for name in group[1:]:
                identity[name] = group[0]
    names = sorted(set(identity.values()))
    images_of: dict[int, list[int]] = {}
    for index, (person, _) in enumerate(images):
        if captures.enrolled[index] and dlib_vectors[index].any():
            images_of.setdefault(names.index(identity[person]), []).append(index)
    persons = sorted(images_of)

    def measure(capture: np.ndarray, reference: np.ndarray, label: str) -> None:
        rng = np.random.default_rng(0)
        acquired = np.ones(len(capture), dtype=bool)
        run = GalleryRun(Path(), Path(), 300, args.draws)
        results = [
            run_draw(Embeddings(capture, reference, acquired), images_of, persons, rng, run)[0]
            for _ in range(args.draws)
        ]
        print(
            f"| {label} | {np.mean([r.rank1 for r in results]) * 100:.2f}%"
            f" | {np.mean([r.fnir[1e-2] for r in results]) * 100:.2f}%"
            f" | {np.mean([r.fnir[1e-3] for r in results]) * 100:.2f}% |"
        )

    print(f"dlib descriptor: median {np.median(dlib_ms):.1f} ms a face (2 threads busy)")
    print("| templates | rank-1 | FNIR @ FPIR 1e-2 | FNIR @ FPIR 1e-3 |\n| --- | --- | --- | --- |")
    measure(captures.vectors, references.vectors, "SFace (deployed recipes)")
    measure(dlib_vectors, dlib_vectors, "dlib alone")
    for weight in (0.5, 0.6, 0.7):
        capture = l2_normalise(
            np.hstack([np.sqrt(weight) * captures.vectors, np.sqrt(1 - weight) * dlib_vectors])
        )
        reference = l2_normalise(
            np.hstack([np.sqrt(weight) * references.vectors, np.sqrt(1 - weight) * dlib_vectors])
        )
        measure(capture, reference, f"fusion, SFace weight {weight}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
