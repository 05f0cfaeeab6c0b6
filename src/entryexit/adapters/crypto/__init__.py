"""Key providers and envelope encryption."""
