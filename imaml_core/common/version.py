"""The engine's version, written into checkpoints and run folders (and the package's version)."""

VERSION = "0.1.0"
