"""Pure domain rules: standard library and numpy only."""
