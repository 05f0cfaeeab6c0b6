"""Adapters: storage, crypto, clock and other ports implemented for the real world."""
