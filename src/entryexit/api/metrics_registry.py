"""The process's one Prometheus registry (one service per process), in a module of its own so
that middleware below the observability module (``api/limits.py``) can count into it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry(auto_describe=True)
