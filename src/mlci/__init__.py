"""mlci: one noxfile drives an ML project's CI/CD, locally exactly as in CI."""

from __future__ import annotations

__version__ = "0.2.0"
