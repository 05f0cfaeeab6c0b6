"""Use cases: each a function or small class over domain rules and ports."""
