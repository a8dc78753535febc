"""A script whose flow runs until Ctrl-C: used by the SIGINT tests.

argv: OUT_PATH [hang_close]
Prints "running" once the consumer has seen its first item; prints "returned"
when asyncflow.run() returns, "interrupted" on KeyboardInterrupt.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import asyncflow
from asyncflow.core import Flow
from tests.helpers import CountProducer, Recorder


class HangingCloseRecorder(Recorder):
    """A Recorder whose close() never returns."""

    def close(self) -> None:
        super().close()
        time.sleep(1000)


class Announcer(Recorder):
    """A Recorder that prints "running" on its first item."""

    def consume(self, *items: Any) -> None:
        super().consume(*items)
        if not getattr(self, "announced", False):
            self.announced = True
            print("running", flush=True)


def main() -> None:
    out = sys.argv[1]
    hang = len(sys.argv) > 2 and sys.argv[2] == "hang_close"
    producer = CountProducer(None, delay=0.002)
    consumer_cls = HangingCloseRecorder if hang else Announcer
    consumer = consumer_cls(out)(producer)
    if hang:
        print("running", flush=True)
    try:
        asyncflow.run(Flow([producer], [consumer]))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    except SystemExit as exc:
        print("terminated", flush=True)
        raise exc
    print("returned", flush=True)


if __name__ == "__main__":
    main()
