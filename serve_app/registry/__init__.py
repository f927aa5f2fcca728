"""Model files, their specs, and their lifecycle."""
