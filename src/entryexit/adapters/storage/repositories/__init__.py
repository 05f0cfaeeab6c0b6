"""One repository per aggregate, each working inside the unit of work's session."""
