"""EntryExit: biometric entry/exit verification for ports of entry."""

from entryexit.errors import EntryExitError

__version__ = "0.1.0"

__all__ = ["EntryExitError", "__version__"]
