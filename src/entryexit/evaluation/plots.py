"""ROC and DET plots (PNG, matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from entryexit.evaluation.metrics import RocCurve


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(curve: RocCurve, path: Path, title: str) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    far = np.clip(curve.far, 1e-6, 1.0)
    axes.semilogx(far, 1.0 - curve.frr, linewidth=1.5)
    axes.set_xlabel("False accept rate (log scale)")
    axes.set_ylabel("True accept rate")
    axes.set_xlim(1e-5, 1.0)
    axes.set_ylim(0.8, 1.001)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_det(curve: RocCurve, path: Path, title: str) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=110)
    far = np.clip(curve.far, 1e-6, 1.0)
    frr = np.clip(curve.frr, 1e-6, 1.0)
    axes.loglog(far, frr, linewidth=1.5)
    axes.set_xlabel("False match rate (log scale)")
    axes.set_ylabel("False non-match rate (log scale)")
    axes.set_xlim(1e-5, 1.0)
    axes.set_ylim(1e-4, 1.0)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
