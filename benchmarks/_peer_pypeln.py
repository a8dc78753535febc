"""Child side of the pypeln peer: ``python -m benchmarks._peer_pypeln N OUT``.

Runs ``pypeln.process.map(identity) x2`` over ``range(N)`` (spawn start method),
the parent process iterating the last stage as the consumer, and writes the
stamps to ``OUT`` as JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import pypeln as pl  # type: ignore[import-untyped]


def identity(x: Any) -> Any:
    return x


def main(argv: list[str]) -> None:
    n, out = int(argv[0]), Path(argv[1])
    multiprocessing.set_start_method("spawn", force=True)
    t_start = time.monotonic_ns()
    stage = pl.process.map(identity, range(n), workers=1)
    stage = pl.process.map(identity, stage, workers=1)
    count = 0
    t_first = 0
    for _ in stage:
        count += 1
        if count == 1:
            t_first = time.monotonic_ns()
    t_last = time.monotonic_ns()
    data = {"count": count, "t_first": t_first, "t_last": t_last, "t_start": t_start, "t_end": time.monotonic_ns()}
    out.write_text(json.dumps(data))


if __name__ == "__main__":
    main(sys.argv[1:])
