"""``python -m asyncflow`` and the ``asyncflow`` script: the command line (see ``asyncflow.cli``)."""

from __future__ import annotations

import sys

from .cli import main as _cli_main

__all__ = ["main"]


def main() -> int:
    """Entry point of the ``asyncflow`` script: run the command line on ``sys.argv``."""
    return _cli_main(sys.argv[1:])


if __name__ == "__main__":  # not in spawned task processes, which import this module as __mp_main__
    sys.exit(main())
