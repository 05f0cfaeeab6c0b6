"""Fingerprints: decode, quality, minutiae, templates, comparison and fusion.

The public names are below; the modules behind them are private. Nothing heavy happens at
import: the native library is loaded when an engine is built, NFIQ 2 on first use.
"""

from pathlib import Path

from entryexit.biometrics.fingerprints._calibration import (
    FINGERPRINT_CALIBRATION,
    fingerprint_threshold,
)
from entryexit.biometrics.fingerprints._decode import (
    ENGINE_PPI,
    MIN_PPI,
    FingerprintDecodeLimits,
    FingerprintImage,
    ResolutionError,
    decode_fingerprint,
    resample_to_engine_ppi,
)
from entryexit.biometrics.fingerprints._engine import (
    ENGINE_KEY,
    ENGINE_KEYS,
    MIN_TEMPLATE_MINUTIAE,
    FingerprintExtractor,
    MatcherScores,
    MinutiaeFingerprintEngine,
    NoFingerprintError,
)
from entryexit.biometrics.fingerprints._fusion import (
    FingerFusionRule,
    fuse_fingers,
    fuse_matchers,
    normalise_bozorth,
    normalise_mcc,
)
from entryexit.biometrics.fingerprints._install import (
    ComponentState,
    component_states,
    install_library,
    verified_leader,
    verified_library,
    verified_nfiq2,
)
from entryexit.biometrics.fingerprints._port import FingerprintEngine
from entryexit.biometrics.fingerprints._quality import (
    DEFAULT_QUALITY_THRESHOLDS,
    FingerprintQuality,
    FingerprintQualityThresholds,
    FingerprintRecaptureReason,
)
from entryexit.biometrics.fingerprints._template import (
    FORMAT_VERSION,
    QUALITY_UNKNOWN,
    FingerPosition,
    FingerprintTemplate,
    TemplateFormatError,
    TemplateSource,
)

__all__ = [
    "DEFAULT_QUALITY_THRESHOLDS",
    "ENGINE_KEY",
    "ENGINE_KEYS",
    "ENGINE_PPI",
    "FINGERPRINT_CALIBRATION",
    "FORMAT_VERSION",
    "MIN_PPI",
    "MIN_TEMPLATE_MINUTIAE",
    "QUALITY_UNKNOWN",
    "ComponentState",
    "FingerFusionRule",
    "FingerPosition",
    "FingerprintDecodeLimits",
    "FingerprintEngine",
    "FingerprintExtractor",
    "FingerprintImage",
    "FingerprintQuality",
    "FingerprintQualityThresholds",
    "FingerprintRecaptureReason",
    "FingerprintTemplate",
    "MatcherScores",
    "MinutiaeFingerprintEngine",
    "NoFingerprintError",
    "ResolutionError",
    "TemplateFormatError",
    "TemplateSource",
    "component_states",
    "decode_fingerprint",
    "fingerprint_threshold",
    "fuse_fingers",
    "fuse_matchers",
    "install_library",
    "normalise_bozorth",
    "normalise_mcc",
    "open_engine",
    "resample_to_engine_ppi",
    "verified_leader",
    "verified_library",
    "verified_nfiq2",
]


def open_engine(
    model_dir: Path,
    extractor: FingerprintExtractor = FingerprintExtractor.MINDTCT,
    threads: int = 1,
) -> MinutiaeFingerprintEngine:
    """The installed engine in the chosen profile, every file's hash verified first."""
    verified_nfiq2()
    uses_leader = extractor in (FingerprintExtractor.LEADER, FingerprintExtractor.LEADER_FAST)
    leader = verified_leader() if uses_leader else None
    return MinutiaeFingerprintEngine.from_paths(
        verified_library(model_dir),
        leader,
        threads,
        fast_leader=extractor is FingerprintExtractor.LEADER_FAST,
    )
