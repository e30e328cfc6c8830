"""The package version, on the core floor so that any module can record it without importing the
package itself (cards, checkpoints and sidecars carry it)."""

__version__ = "0.1.0"
