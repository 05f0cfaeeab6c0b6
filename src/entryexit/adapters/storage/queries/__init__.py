"""Read models: queries that cut across aggregates, each in a read-only transaction."""
