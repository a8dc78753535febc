"""Child side of the videoflow peer: ``python -m benchmarks._peer_videoflow N OUT``.

Runs videoflow 0.2.10's ``IntProducer(0, N-1, 0) → IdentityProcessor → CountingConsumer``
(``BATCH`` flow) and writes the consumer's stamps to ``OUT`` as JSON.  Runs in its
own interpreter (see ``benchmarks.peers``), so videoflow's imports, loggers and
processes stay out of the benchmark's process.

videoflow 0.2.10 runs only with the ``fork`` start method (its default on Linux
before Python 3.14): under ``spawn`` (or ``forkserver``) its task processes die
while unpickling their node, because a node keeps its children in a ``set`` and
``Node.__hash__`` reads ``self._id`` before the node's state is restored.  So this
peer forks; its steady state (the figure compared) does not depend on how the
processes started, its start-up does.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

from videoflow.core import Flow  # type: ignore[import-untyped]
from videoflow.core.constants import BATCH  # type: ignore[import-untyped]
from videoflow.core.node import ConsumerNode  # type: ignore[import-untyped]
from videoflow.processors import IdentityProcessor  # type: ignore[import-untyped]
from videoflow.producers import IntProducer  # type: ignore[import-untyped]


class CountingConsumer(ConsumerNode):  # type: ignore[misc]
    """Counts items; stamps the first arrival and the end of the stream; writes them at close()."""

    def __init__(self, out_path: str) -> None:
        super().__init__()
        self.out_path = out_path
        self.count = 0
        self.t_first = 0

    def consume(self, item: Any) -> None:
        self.count += 1
        if self.count == 1:
            self.t_first = time.monotonic_ns()

    def close(self) -> None:
        data = {"count": self.count, "t_first": self.t_first, "t_last": time.monotonic_ns()}
        Path(self.out_path).write_text(json.dumps(data))


def main(argv: list[str]) -> None:
    n, out = int(argv[0]), Path(argv[1])
    multiprocessing.set_start_method("fork", force=True)
    stamps = out.with_name(out.name + ".consumer")
    producer = IntProducer(0, n - 1, 0)
    identity = IdentityProcessor()(producer)
    consumer = CountingConsumer(str(stamps))(identity)
    flow = Flow([producer], [consumer], flow_type=BATCH)
    t_start = time.monotonic_ns()
    flow.run()
    flow.join()
    t_end = time.monotonic_ns()
    data = json.loads(stamps.read_text())
    data.update(t_start=t_start, t_end=t_end)
    out.write_text(json.dumps(data))


if __name__ == "__main__":
    main(sys.argv[1:])
