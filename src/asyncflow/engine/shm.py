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

An array arrives as its pickle would have: the same dtype (the dtype object itself
travels, so structured, nested and subarray fields, datetime units, byte order and
metadata survive), shape and order (Fortran-ordered arrays stay so, other
non-contiguous ones arrive C-contiguous).  Arrays whose items hold references
(object dtype, a structured dtype with an object field, ``StringDType``) are always
pickled in-band.

A received array stays valid for as long as anything holds it, whatever the run
did: its ``.base`` is the reader's mapping of the slot, and a mapping is unmapped
only when its last reference goes (``SlotReader.close`` drops the reader's own and
never unmaps memory an array uses).  The sender unlinking a segment (its pool
closing when its task ends) removes only the name: existing mappings stay valid,
and the memory is freed with the last of them, so nothing is left in ``/dev/shm``.
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

__all__ = ["SHM_DIR", "THRESHOLD", "SlotPool", "SlotReader", "dump_frozen", "load_frozen", "to_slot"]

#: Arrays at least this large travel through shared memory.
THRESHOLD = 256 * 1024
_ROUND = 1 << 20  # slots are sized in whole MiB, so a slot fits the next frame too

_PLAIN = b"\x00"
_SHARED = b"\x01"


class SlotPool:
    """The sending task's shared-memory slots: made on demand, reused, unlinked at the end."""

    def __init__(self, budget: int, prefix: str | None = None) -> None:
        """``prefix``: segments are named ``<prefix><n>`` (else the ``multiprocessing`` default)."""
        self._budget = budget
        self._prefix = prefix
        self._slots: dict[int, shared_memory.SharedMemory] = {}
        self._free: set[int] = set()
        self._ids = itertools.count()
        self._size = 0
        self._closed = False

    @property
    def in_use(self) -> int:
        """Slots lent to rows in flight."""
        return len(self._slots) - len(self._free)

    def acquire(self, nbytes: int) -> tuple[int, shared_memory.SharedMemory] | None:
        """A slot of at least ``nbytes``, or ``None`` if the budget is spent."""
        if self._closed:
            return None
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
        if not _room_for(size):
            return None
        sid = next(self._ids)
        name = None if self._prefix is None else f"{self._prefix}{sid}"
        shm = shared_memory.SharedMemory(name, create=True, size=size)
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
        try:
            shm.unlink()
        except FileNotFoundError:
            pass  # unlink_all() came first

    def close(self) -> None:
        """Unlink every slot (idempotent)."""
        self._closed = True
        for sid in list(self._slots):
            self._free.add(sid)
            self._drop(sid)

    def unlink_all(self) -> None:
        """Unlink every slot's name now, from any thread, and make no more (the task is about to be
        killed): mappings stay valid, so a node still running is not disturbed."""
        self._closed = True
        for shm in list(self._slots.values()):
            try:
                shm.unlink()
            except FileNotFoundError:
                pass


class SlotReader:
    """The receiving task's view of senders' slots: one mapping per segment, attached once.

    Each array made on a mapping holds it as its ``.base`` (and every view of the
    array holds the array), so the mapping lives as long as anything that points
    into it.  Nothing here calls ``mmap.close()``: numpy does not keep a buffer
    export on the mapping, so ``close()`` would not raise ``BufferError`` for an
    array still in use but unmap its memory under it.  A mapping is unmapped when
    its last reference goes instead: the reader's at ``close()``, an array's when it
    is collected.
    """

    def __init__(self) -> None:
        self._maps: dict[str, mmap.mmap] = {}

    def mapping(self, name: str) -> mmap.mmap:
        """The mapping of segment ``name`` (attached on first use)."""
        buf = self._maps.get(name)
        if buf is None:
            if self._maps:
                self._forget_unlinked()
            buf = self._maps[name] = _attach(name)
        return buf

    def _forget_unlinked(self) -> None:
        """Drop the mappings of segments their sender has unlinked.

        A sender unlinks a slot that no row uses any more (to make room for a bigger
        one, or at its end), so no row will name it again; without this the reader
        would keep its memory mapped, and allocated, until the end of the stream.
        An array still on such a slot keeps its mapping alive itself.
        """
        if not _DEV_SHM:
            return
        for name in [name for name in self._maps if not os.path.exists(_dev_shm_path(name))]:
            del self._maps[name]

    def array(self, name: str, shape: tuple[int, ...], dtype: Any, fortran: bool = False) -> Any:
        """An array of ``shape`` and ``dtype`` at the start of segment ``name``; its ``.base`` is the mapping."""
        numpy = sys.modules.get("numpy") or __import__("numpy")
        return numpy.ndarray(shape, dtype, buffer=self.mapping(name), order="F" if fortran else "C")

    @property
    def attached(self) -> int:
        """How many segments this reader holds a mapping of."""
        return len(self._maps)

    def close(self) -> None:
        """Drop the reader's mappings (idempotent).

        One that no array uses is unmapped now (this was its last reference); one
        that an array still uses stays mapped until that array, and every view of
        it, is gone.
        """
        self._maps.clear()


#: Where Linux keeps shared-memory segments, and whether this machine has it.
SHM_DIR = "/dev/shm"
_DEV_SHM = sys.platform.startswith("linux") and os.path.isdir(SHM_DIR)


def _room_for(size: int) -> bool:
    """Whether /dev/shm has room for a new segment of ``size`` bytes, and as much again to spare.

    A segment takes its memory only as it is written, and writing past what the tmpfs
    holds kills the process with SIGBUS: a container's /dev/shm is often 64 MiB (Docker's
    default), less than one task's budget.  Without room, arrays travel in-band.
    """
    if not _DEV_SHM:
        return True
    try:
        st = os.statvfs(SHM_DIR)
    except OSError:
        return True
    return st.f_bavail * st.f_frsize >= 2 * size


def _dev_shm_path(name: str) -> str:
    """Where Linux keeps segment ``name``."""
    return f"{SHM_DIR}/{name.lstrip('/')}"


def _attach(name: str) -> mmap.mmap:
    """Map an existing segment without registering it with the resource tracker.

    ``SharedMemory(name)`` registers the segment again in the reader (Python < 3.13),
    and the tracker would then unlink it when the *reader* exits, under the
    sender's feet; the sender owns the segment, so the reader maps it directly.
    """
    path = _dev_shm_path(name)
    if os.path.exists(path):
        with open(path, "r+b") as f:
            if sys.version_info >= (3, 13):
                # Without a descriptor of its own: a mapping an array keeps after the
                # run does not hold a file descriptor too.
                return mmap.mmap(f.fileno(), 0, trackfd=False)
            return mmap.mmap(f.fileno(), 0)
    # Not Linux: let SharedMemory open the segment (tracked: spawned tasks share the
    # parent's tracker, where the sender registered it already), then take its mapping
    # over, or the object's __del__ would close the mapping under our arrays.
    shm = shared_memory.SharedMemory(name=name)
    buf: mmap.mmap = shm._mmap  # type: ignore[attr-defined]
    shm._buf.release()  # type: ignore[attr-defined]
    shm._buf = None  # type: ignore[attr-defined]
    shm._mmap = None  # type: ignore[attr-defined]
    shm.close()  # closes only its file descriptor now
    return buf


def _shareable(dtype: Any) -> bool:
    """Whether items of ``dtype`` are plain bytes: no references (object, ``StringDType``)."""
    return not dtype.hasobject


def _has_big_array(value: Any, depth: int = 0) -> bool:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return False
    kind = type(value)
    if kind is numpy.ndarray:
        return bool(value.nbytes >= THRESHOLD and _shareable(value.dtype))
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
        if type(obj) is not self._ndarray:
            return None
        pid = to_slot(self.pool, obj)
        if pid is None:
            return None  # small, holds references, or the pool is spent: pickle it in-band
        self.used.append(pid[1])
        self.shared_bytes += obj.nbytes
        return pid


def to_slot(pool: SlotPool, array: Any) -> tuple[Any, ...] | None:
    """Copy ``array`` (a numpy array) into a slot of ``pool``: its reference for ``SlotReader.array``.

    ``(segment name, slot id, shape, dtype, fortran)``, or ``None`` when the array is
    below ``THRESHOLD``, its items hold references, or the pool's budget is spent.
    """
    if array.nbytes < THRESHOLD or not _shareable(array.dtype):
        return None
    got = pool.acquire(array.nbytes)
    if got is None:
        return None
    sid, shm = got
    # As ndarray.__reduce__: Fortran order is kept, anything else arrives C-contiguous.
    fortran = bool(array.flags.f_contiguous and not array.flags.c_contiguous)
    numpy = sys.modules["numpy"]
    slot = numpy.ndarray(array.shape, array.dtype, buffer=shm.buf, order="F" if fortran else "C")
    slot[...] = array  # the one copy in
    del slot
    # The dtype object itself, pickled with the reference: ``dtype.str`` would turn
    # a structured dtype into raw bytes (``|V28``) and drop its metadata.  Only a
    # built-in dtype (uint8, native float32...) goes by its code, which names that
    # very dtype, and costs a tenth of pickling it.
    dtype = array.dtype
    return (shm.name, sid, array.shape, dtype.str if dtype.isbuiltin == 1 else dtype, fortran)


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
        name, sid, shape, dtype, fortran = pid
        array = self.reader.array(name, shape, dtype, fortran)  # dtype: a dtype or a built-in's code
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
