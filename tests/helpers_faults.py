"""Nodes that fail in every way a node can (module level for spawn)."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode


class FailingOpen(ProcessorNode):
    def open(self) -> None:
        raise OSError("cannot open the model file")

    def process(self, x: Any) -> Any:
        return x


class FailingNext(ProducerNode):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def open(self) -> None:
        self.i = 0

    def next(self) -> int:
        if self.i == self.at:
            raise KeyError("camera unplugged")
        self.i += 1
        return self.i - 1


class FailingConsume(ConsumerNode):
    def consume(self, x: Any) -> None:
        if x == 3:
            raise ZeroDivisionError("cannot write item 3")


class FailingClose(ConsumerNode):
    def consume(self, x: Any) -> None:
        pass

    def close(self) -> None:
        raise RuntimeError("flush failed at close")


class UnpicklableOutput(ProcessorNode):
    def process(self, x: Any) -> Any:
        return threading.Lock()


class Unpicklable(Exception):
    """An exception that cannot be pickled back to the parent."""

    def __init__(self, message: str, lock: Any) -> None:
        super().__init__(message)
        self.lock = lock


class RaisesUnpicklable(ProcessorNode):
    def process(self, x: Any) -> Any:
        raise Unpicklable("odd failure", threading.Lock())


class Dies(ProcessorNode):
    """Dies on item ``at`` in the way ``how`` says: sigkill, exit, segfault."""

    def __init__(self, how: str, at: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.how = how
        self.at = at

    def process(self, x: int) -> int:
        if x == self.at:
            if self.how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.how == "exit":
                os._exit(3)
            elif self.how == "segfault":
                ctypes.string_at(0)
        return x


class SlowSink(ConsumerNode):
    def consume(self, x: Any) -> None:
        time.sleep(0.001)


class TwoArgError(Exception):
    """Pickles (its args hold one message) but does not unpickle: ``__init__`` wants two arguments."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


class EmitsUnloadable(ProcessorNode):
    """Returns an output that pickles but cannot be unpickled, at item ``at``."""

    def __init__(self, at: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.at = at

    def process(self, x: int) -> Any:
        return TwoArgError("bad", "value") if x == self.at else x
