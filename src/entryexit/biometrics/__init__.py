"""The face pipeline: decode, detect, align, quality, embed, compare."""

from entryexit.biometrics.compare import Template, compare_templates, similarity_matrix
from entryexit.biometrics.engine import EngineSettings, FaceAnalysis, FaceEngine
from entryexit.biometrics.quality import QualityReason, QualityReport, QualityThresholds

__all__ = [
    "EngineSettings",
    "FaceAnalysis",
    "FaceEngine",
    "QualityReason",
    "QualityReport",
    "QualityThresholds",
    "Template",
    "compare_templates",
    "similarity_matrix",
]
