"""The built-in recognizer: SFace (OpenCV Zoo, 2021dec), described like any plug-in."""

from __future__ import annotations

from entryexit.biometrics.align import ALIGNED_SIZE, REFERENCE_LANDMARKS_112
from entryexit.biometrics.models import SFACE_2021DEC
from entryexit.biometrics.recognizer import (
    FLIP_RECIPE,
    PLAIN_RECIPE,
    Calibration,
    RecognizerManifest,
)

# Thresholds measured on lfw-dev (benchmarks/RESULTS.md, "Calibration"); FPIR targets hold for
# 300-traveler flights. Re-measure on your own data with the commands named in ``source``.
_GALLERY_SOURCE = (
    "entryexit evaluate gallery --data ../shared/data/lfw-dev --gallery-size 300 --draws 50"
    " --same-person benchmarks/lfw-dev-same-person.tsv"
)
_VERIFICATION_SOURCE = "entryexit evaluate lfw --data ../shared/data/lfw-dev"

SFACE_MANIFEST = RecognizerManifest(
    key=SFACE_2021DEC.key,
    name=SFACE_2021DEC.name,
    version=SFACE_2021DEC.version,
    licence=SFACE_2021DEC.license,
    input_width=ALIGNED_SIZE,
    input_height=ALIGNED_SIZE,
    # The network normalises internally: raw 0..255 RGB values go in.
    colour="RGB",
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    landmarks=REFERENCE_LANDMARKS_112,
    dimension=128,
    # OpenCV's DNN (about 14 ms a face on one thread here) beat onnxruntime on this model
    # (about 24 ms: the file lists its weights as graph inputs, which defeats constant folding).
    runtime="opencv",
    calibrations={
        FLIP_RECIPE: Calibration(
            gallery={1e-2: 0.444, 1e-3: 0.484},
            verification={1e-2: 0.296, 1e-3: 0.367, 1e-4: 0.432},
            gallery_size=300,
            source=f"{_GALLERY_SOURCE}; {_VERIFICATION_SOURCE}",
        ),
        PLAIN_RECIPE: Calibration(
            gallery={1e-2: 0.442, 1e-3: 0.484},
            verification={1e-2: 0.292, 1e-3: 0.365, 1e-4: 0.431},
            gallery_size=300,
            source=f"{_GALLERY_SOURCE} (ENTRYEXIT_FLIP_AUGMENTATION=false); {_VERIFICATION_SOURCE}",
        ),
    },
)
