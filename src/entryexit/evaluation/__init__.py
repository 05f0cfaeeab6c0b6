"""Evaluation: score files, ROC/DET, FNIR/FPIR, reports and plots."""
