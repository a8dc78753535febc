"""Nodes and checks for arrays that cross processes through shared memory (module level for spawn).

An array that came through a slot points into a mapping of a ``/dev/shm`` segment.
``mapping_of`` finds that mapping in ``/proc/self/maps`` without touching the
array's memory, so a check can tell "unmapped" (which would crash the process) or
"no longer a shared-memory mapping" (garbage) from "changed", and fail cleanly.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import time
from typing import Any

import numpy as np

from asyncflow.core import ConsumerNode, ProducerNode

SHM_PREFIX = "/dev/shm/"


def pattern(index: int, shape: tuple[int, ...]) -> Any:
    """Frame ``index``: different at every position and in every frame (uint8)."""
    size = int(np.prod(shape))
    flat = (np.arange(size, dtype=np.uint32) * (7 * index + 3) + 13 * index) % 251
    return flat.astype(np.uint8).reshape(shape)


def mapping_of(array: Any) -> str | None:
    """The path of the mapping that holds ``array``'s first byte ("" if anonymous), ``None`` if unmapped."""
    address = int(array.__array_interface__["data"][0])
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                return fields[5].strip() if len(fields) > 5 else ""
    return None


def shm_mapped(array: Any) -> bool:
    """Whether ``array`` lies in a mapping of a shared-memory segment."""
    path = mapping_of(array)
    return path is not None and path.startswith(SHM_PREFIX)


def segment_name(path: str) -> str:
    """``/dev/shm/psm_x (deleted)`` -> ``psm_x``."""
    return path[len(SHM_PREFIX) :].removesuffix(" (deleted)")


def mapped_segments() -> set[str]:
    """Names of the shared-memory segments this process maps now."""
    names = set()
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) > 5 and fields[5].startswith(SHM_PREFIX):
                names.add(segment_name(fields[5].strip()))
    return names


def unlinked_but_mapped() -> set[str]:
    """Names of the segments this process maps although they have been unlinked."""
    names = set()
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) > 5 and fields[5].startswith(SHM_PREFIX) and fields[5].rstrip().endswith("(deleted)"):
                names.add(segment_name(fields[5].strip()))
    return names


def check_kept(kept: list[tuple[int, Any, tuple[slice, ...]]], shape: tuple[int, ...]) -> list[str]:
    """What is wrong with kept ``(index, array, where)`` entries: ``array`` should be ``pattern(index)[where]``."""
    problems = []
    for index, array, where in kept:
        if not shm_mapped(array):  # reading it would crash, or read someone else's memory
            problems.append(f"frame {index}: its memory is no longer mapped ({mapping_of(array)!r})")
        elif not np.array_equal(array, pattern(index, shape)[where]):
            problems.append(f"frame {index}: changed")
    return problems


class PatternFrames(ProducerNode):
    """Emits ``(index, pattern(index, shape))`` for index in ``range(n)``, each a new array."""

    def __init__(self, n: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.n = n
        self.shape = shape

    def open(self) -> None:
        self.i = 0

    def next(self) -> tuple[int, Any]:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.i - 1, pattern(self.i - 1, self.shape)


_VIEW = (slice(1, None), slice(None, None, 2))  # what KeepFrames keeps of odd frames


def _late_check(kept: list[tuple[int, Any, tuple[slice, ...]]], shape: tuple[int, ...], verdict: str) -> None:
    """At the task process's exit, after its channels (and their shared-memory reader) are closed.

    Waits until the upstream task has unlinked the segments the arrays lie in, so
    the check also covers the sender's ``SlotPool.close()``.
    """
    gc.collect()
    paths = {mapping_of(array) for _, array, _ in kept}
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if all(p is not None and p.endswith("(deleted)") for p in paths):
            break
        time.sleep(0.05)
        paths = {mapping_of(array) for _, array, _ in kept}
    unlinked = all(p is not None and p.endswith("(deleted)") for p in paths)
    names_left = sorted(n for n in (segment_name(p) for p in paths if p) if os.path.exists(SHM_PREFIX + n))
    _write(verdict, "exit", check_kept(kept, shape), unlinked=unlinked, names_left=names_left)


def _write(path: str, when: str, problems: list[str], **extra: Any) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({"when": when, "problems": problems, **extra}) + "\n")


class KeepFrames(ConsumerNode):
    """Keeps every frame it receives (odd ones only as a view) and checks them at ``close()``.

    ``close()`` raises if a frame changed or did not come through shared memory; it
    also registers a second check for the process's exit, after the task closed its
    channels and the upstream task unlinked its slots.  Both write a JSON line to
    ``verdict``.
    """

    def __init__(self, shape: tuple[int, ...], verdict: str) -> None:
        super().__init__()
        self.shape = shape
        self.verdict = verdict

    def open(self) -> None:
        self.kept: list[tuple[int, Any, tuple[slice, ...]]] = []
        self.not_shared: list[int] = []

    def consume(self, item: tuple[int, Any]) -> None:
        index, frame = item
        if not shm_mapped(frame):
            self.not_shared.append(index)
        where = _VIEW if index % 2 else (slice(None),)
        self.kept.append((index, frame[where], where))  # an odd frame: only a view of it is kept

    def close(self) -> None:
        gc.collect()
        problems = check_kept(self.kept, self.shape)
        if self.not_shared:
            problems.append(f"frames {self.not_shared} did not come through shared memory")
        _write(self.verdict, "close", problems, count=len(self.kept))
        atexit.register(_late_check, self.kept, self.shape, self.verdict)
        if problems:
            raise AssertionError("; ".join(problems))


class EmitEach(ProducerNode):
    """Emits ``(k, arrays[k])`` for each array of ``make()`` (a module-level function name in this module)."""

    def __init__(self, make: str) -> None:
        super().__init__()
        self.make = make

    def open(self) -> None:
        self.arrays = globals()[self.make]()
        self.i = 0

    def next(self) -> tuple[int, Any]:
        if self.i >= len(self.arrays):
            raise StopIteration
        self.i += 1
        return self.i - 1, self.arrays[self.i - 1]


N = 40_000  # rows: 8-byte items are 320 000 bytes, above the shared-memory threshold


def odd_arrays() -> list[Any]:
    """Arrays of every kind of dtype and layout, all but the zero-size one >= 256 KiB."""
    rng = np.random.default_rng(5)
    out: list[Any] = []
    point = np.dtype([("x", "<f8"), ("y", "<i4"), ("name", "U4")])
    a = np.zeros(10_000, point)
    a["x"] = rng.random(10_000)
    a["y"] = np.arange(10_000)
    a["name"] = [f"n{i % 997}" for i in range(10_000)]
    out.append(a)
    nested = np.dtype(
        [("pos", [("x", ">f4"), ("y", "<f4")]), ("m", "<f8", (2, 3)), ("tag", "S5"), ("flags", "?", (3,))],
        align=True,
    )
    b = np.zeros(6_000, nested)
    b["pos"]["x"] = rng.random(6_000)
    b["pos"]["y"] = -rng.random(6_000)
    b["m"] = rng.random((6_000, 2, 3))
    b["tag"] = b"ab"
    b["flags"][:, 1] = True
    out.append(b)
    titled = np.dtype(
        {"names": ["a", "b"], "formats": ["<i4", ">f8"], "offsets": [0, 16], "itemsize": 32, "titles": ["A", None]}
    )
    c = np.zeros(10_000, titled)
    c["a"] = np.arange(10_000)
    c["b"] = rng.random(10_000)
    out.append(c)
    out.append(np.arange(N, dtype="i8").astype("M8[ms]"))
    out.append((np.arange(N, dtype="i8") * 7).astype("m8[us]"))
    out.append(np.arange(N, dtype=">i8"))
    out.append((rng.random(N) + 1j * rng.random(N)).astype(">c16"))
    out.append(np.arange(4 * N, dtype="<u2"))
    out.append(np.arange(N, dtype=np.float64).astype(np.dtype("f8", metadata={"unit": "m"})))
    out.append(np.asfortranarray(rng.random((300, 400)).astype("f4")))  # Fortran order
    base = rng.random((1000, 200))
    out.append(base[::2, ::3])  # non-contiguous
    out.append(base[::-1])  # negative strides
    out.append(base.T)  # F-contiguous view of a C array
    out.append(np.array("x" * 70_000, dtype="U70000"))  # 0-d, 280 000 bytes
    blob = np.zeros((), [("blob", "u1", (300_000,)), ("n", "<i4")])  # 0-d structured with a subarray field
    blob["blob"] = np.arange(300_000) % 251
    blob["n"] = 42
    out.append(blob)
    out.append(np.zeros((0, 100_000), point))  # zero-size
    out.append(np.array([f"s{i}" for i in range(N)], dtype=object))  # object: pickled in-band
    with_obj = np.zeros(N // 2, [("a", "<i8"), ("o", "O")])
    with_obj["a"] = np.arange(N // 2)
    with_obj["o"] = [("t", i) for i in range(N // 2)]
    out.append(with_obj)
    string_dtype = getattr(np.dtypes, "StringDType", None)
    if string_dtype is not None:
        out.append(np.array([f"s{i}" for i in range(N)], dtype=string_dtype()))
    out.append(np.rec.fromarrays([np.arange(N), rng.random(N)], names="i,v"))  # a subclass: pickled in-band
    out.append(rng.random(4 * N).astype(np.float16).reshape(400, 400)[:, :350])
    out.append(np.zeros(300_000, dtype="V1"))
    out.append(np.zeros((700, 500), dtype=bool))
    return out
