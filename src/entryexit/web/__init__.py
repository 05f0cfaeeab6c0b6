"""The officer console (server-rendered pages)."""
