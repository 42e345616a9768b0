"""cockpit: an autonomous ML research loop with a terminal cockpit on top."""

__version__ = "0.1.0"
