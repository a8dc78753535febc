"""Shared-memory slots: large numpy arrays cross a process boundary with one copy in
and one copy out, instead of being pickled through the channel.

The sending task owns a ``SlotPool``.  When a row holds an array of at least
``THRESHOLD`` bytes, ``dump_frozen`` copies the array into a free slot and pickles
only a reference to it.  The receiving task's node gets an array that *is* the
slot (no copy out): the slot is lent to that array alone, so the node may keep it
or mutate it in place, and it goes back to the sender, in a ``RELEASE`` frame,
once the array (and every view of it) has been garbage-collected.  When no slot is free
and the pool has reached its byte budget, the array is pickled in-band as usual:
nothing waits on the pool.  The sender unlinks its slots when its task ends; the
multiprocessing resource tracker unlinks what a killed task left behind.
"""

from __future__ import annotations

import io
import itertools
import mmap
import os
import pickle
import sys
import weakref
from multiprocessing import shared_memory
from typing import Any

__all__ = ["THRESHOLD", "SlotPool", "SlotReader", "dump_frozen", "load_frozen"]

#: Arrays at least this large travel through shared memory.
THRESHOLD = 256 * 1024
_ROUND = 1 << 20  # slots are sized in whole MiB, so a slot fits the next frame too

_PLAIN = b"\x00"
_SHARED = b"\x01"


class SlotPool:
    """The sending task's shared-memory slots: made on demand, reused, unlinked at the end."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._slots: dict[int, shared_memory.SharedMemory] = {}
        self._free: set[int] = set()
        self._ids = itertools.count()
        self._size = 0

    @property
    def in_use(self) -> int:
        """Slots lent to rows in flight."""
        return len(self._slots) - len(self._free)

    def acquire(self, nbytes: int) -> tuple[int, shared_memory.SharedMemory] | None:
        """A slot of at least ``nbytes``, or ``None`` if the budget is spent."""
        best = None
        for sid in self._free:
            size = self._slots[sid].size
            if size >= nbytes and (best is None or size < self._slots[best].size):
                best = sid
        if best is not None:
            self._free.discard(best)
            return best, self._slots[best]
        size = -(-nbytes // _ROUND) * _ROUND
        while self._size + size > self._budget and self._free:
            self._drop(min(self._free, key=lambda s: self._slots[s].size))
        if self._size + size > self._budget and self._slots:
            return None
        shm = shared_memory.SharedMemory(create=True, size=size)
        sid = next(self._ids)
        self._slots[sid] = shm
        self._size += size
        return sid, shm

    def release(self, sids: list[int]) -> None:
        """Take slots back (the receiver has copied their arrays out)."""
        for sid in sids:
            if sid in self._slots:
                self._free.add(sid)

    def _drop(self, sid: int) -> None:
        self._free.discard(sid)
        shm = self._slots.pop(sid)
        self._size -= shm.size
        shm.close()
        shm.unlink()

    def close(self) -> None:
        """Unlink every slot (idempotent)."""
        for sid in list(self._slots):
            self._free.add(sid)
            self._drop(sid)


class SlotReader:
    """The receiving task's view of senders' slots: attached once per name, closed at the end."""

    def __init__(self) -> None:
        self._maps: dict[str, mmap.mmap] = {}

    def view(self, name: str) -> memoryview:
        buf = self._maps.get(name)
        if buf is None:
            buf = self._maps[name] = _attach(name)
        return memoryview(buf)

    def close(self) -> None:
        for buf in self._maps.values():
            try:
                buf.close()
            except BufferError:
                pass  # an array still points into it; the mapping goes with the process
        self._maps.clear()


def _attach(name: str) -> mmap.mmap:
    """Map an existing segment without registering it with the resource tracker.

    ``SharedMemory(name)`` registers the segment again in the reader (Python < 3.13),
    and the tracker would then unlink it when the *reader* exits, under the
    sender's feet; the sender owns the segment, so the reader maps it directly.
    """
    path = f"/dev/shm/{name.lstrip('/')}"
    if os.path.exists(path):
        with open(path, "r+b") as f:
            return mmap.mmap(f.fileno(), 0)
    shm = shared_memory.SharedMemory(name=name)  # not Linux: fall back, tracked
    return shm._mmap  # type: ignore[attr-defined,no-any-return]


def _has_big_array(value: Any, depth: int = 0) -> bool:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return False
    kind = type(value)
    if kind is numpy.ndarray:
        return bool(value.nbytes >= THRESHOLD and not value.dtype.hasobject)
    if depth < 2:
        if kind is tuple or kind is list:
            return any(_has_big_array(v, depth + 1) for v in value)
        if kind is dict:
            return any(_has_big_array(v, depth + 1) for v in value.values())
    return False


class _SlotPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, pool: SlotPool) -> None:
        super().__init__(file, protocol=5)
        self.pool = pool
        self.used: list[int] = []
        self.shared_bytes = 0
        self._ndarray = sys.modules["numpy"].ndarray

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is not self._ndarray or obj.nbytes < THRESHOLD or obj.dtype.hasobject:
            return None
        got = self.pool.acquire(obj.nbytes)
        if got is None:
            return None  # the pool is spent: pickle this one in-band
        sid, shm = got
        numpy = sys.modules["numpy"]
        numpy.ndarray(obj.shape, obj.dtype, buffer=shm.buf)[...] = obj  # the one copy in
        self.used.append(sid)
        self.shared_bytes += obj.nbytes
        return (shm.name, sid, obj.shape, obj.dtype.str)


def dump_frozen(row: Any, pool: SlotPool | None) -> tuple[bytes, list[int], int]:
    """Pickle a row now; big arrays go to ``pool``'s slots.

    Returns the bytes, the slots used and the bytes that went through them.
    """
    if pool is None or not _has_big_array(row):
        return _PLAIN + pickle.dumps(row, 5), [], 0
    buf = io.BytesIO()
    buf.write(_SHARED)
    pickler = _SlotPickler(buf, pool)
    try:
        pickler.dump(row)
    except BaseException:
        pool.release(pickler.used)
        raise
    return buf.getvalue(), pickler.used, pickler.shared_bytes


class _SlotUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, reader: SlotReader, released: list[int]) -> None:
        super().__init__(file)
        self.reader = reader
        self.released = released

    def persistent_load(self, pid: Any) -> Any:
        name, sid, shape, dtype = pid
        numpy = sys.modules.get("numpy") or __import__("numpy")
        array = numpy.ndarray(shape, numpy.dtype(dtype), buffer=self.reader.view(name))
        # Views of it keep it alive through ``.base``: the slot goes back only when
        # nothing in this process can reach its memory any more.
        weakref.finalize(array, self.released.append, sid)
        return array


def load_frozen(data: memoryview, reader: SlotReader, released: list[int]) -> Any:
    """Unpickle a row made by ``dump_frozen``.

    Its arrays live in the sender's slots; each slot's id is appended to
    ``released`` when its array is gone (a plain list append: safe wherever the
    garbage collector runs it), and the receiver sends those ids back.
    """
    if data[0] == 0:
        return pickle.loads(data[1:])
    return _SlotUnpickler(io.BytesIO(data[1:]), reader, released).load()
