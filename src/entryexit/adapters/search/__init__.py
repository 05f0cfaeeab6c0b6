"""Approximate nearest-neighbour search for large template lists."""
