"""videoflow's ``videoflow.version``: the videoflow release this facade mirrors."""

from __future__ import annotations

__all__ = ["__version__"]

#: The videoflow release whose public API ``asyncflow.compat.videoflow`` mirrors.
__version__ = "0.2.10"
