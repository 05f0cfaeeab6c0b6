"""Relational storage: SQLite (embedded default) and PostgreSQL (production)."""
