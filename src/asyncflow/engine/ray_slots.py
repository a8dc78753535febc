"""Shared-memory slots between Ray actors on one machine: a frame crosses the chain with one plain copy.

Ray's object store fixes an array with a ``ray.put``: 2-6 ms for a 6 MB frame on the
development machine (allocation in the store, page faults, round trips to the raylet
and, when the ref goes, to its owner), where a copy into memory that is already
mapped costs 0.4 ms.  So where every task that can read a task's rows runs on that
task's Ray node (and so does the driver, if a ``ResultsConsumer`` comes later), the
scheduler lets the task *share*: it copies its big arrays into slots of its own
(``shm.SlotPool``, reused from row to row as the local engine's senders do), and the
rows carry a ``SlotRef`` where they would carry an ``ObjectRef``.  A task that reads
the value maps the slot once (``shm.SlotReader``) and gets a read-only view of it, as
it would of the object store.  Rows for another machine, or a driver elsewhere (Ray
Client), keep going through the object store: the choice is made per task, when
every task has opened and Ray has said where it runs.

A slot goes back to its owner when nothing can read it any more:

1. the batch that carried it has left the chain (every stage has reported on it, the
   driver's ``ResultsConsumer`` has read it, or the batch was dropped), and
2. every view that a task made of it is gone: a reader counts each slot it maps for a
   value (``loaded``) and, through a ``weakref.finalize`` on the array, each one that
   is collected (``released``); both travel in the call's report.

The driver adds them up (``SlotLedger``) and hands the slots that are free to their
owner with its next call.  A node that keeps an input array (a background model that
holds the previous frame) keeps its slot until it lets go of it: nothing is ever
written under an array a node still holds.  When an owner's budget is spent (nodes
hold many arrays, or rows pile up), its arrays go through the object store again
(``ray.put``): slower, never waiting, never wrong.

The owner unlinks its slots when its task closes; views that a node or
``flow.results()`` still holds stay valid (a mapping lives as long as an array uses
it).  A task about to be killed (``stop(timeout)`` expired, a failure elsewhere) is
first asked to unlink them from its control thread (``SlotWriter.unlink_all``).  A
task killed without warning (its driver killed, its process gone) cannot, and Ray
kills the children of a worker that exits, ``multiprocessing``'s resource tracker
among them: so an owner names its segments ``afray_<pid namespace>_<pid>_<n>``, and
each new owner first unlinks the segments of owners of its pid namespace that are
no longer alive (``sweep``).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .shm import SHM_DIR, SlotPool, SlotReader, to_slot

__all__ = ["SlotGroup", "SlotKey", "SlotLedger", "SlotLoader", "SlotRef", "SlotWriter", "sweep"]

#: (owner task, slot id): a slot, as the driver counts it.
SlotKey = tuple[int, int]


class SlotRef(NamedTuple):
    """An array in a slot of task ``owner`` (what ``shm.to_slot`` returns, and whose it is)."""

    owner: int
    name: str
    sid: int
    shape: tuple[int, ...]
    dtype: Any
    fortran: bool


def _namespace() -> str:
    """This process's pid namespace (pids mean something only within one)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def sweep(shm_dir: str = SHM_DIR) -> list[str]:
    """Unlink the slots of owners in this pid namespace that are gone; the names unlinked."""
    mark = f"afray_{_namespace()}_"
    try:
        names = [name for name in os.listdir(shm_dir) if name.startswith(mark)]
    except OSError:
        return []
    gone: list[str] = []
    for name in names:
        pid = name[len(mark) :].split("_", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(shm_dir, name))
                gone.append(name)
    return gone


class SlotWriter:
    """A sharing task's slots: each big array it fixes is copied into one (``put``)."""

    def __init__(self, owner: int, budget: int) -> None:
        self.owner = owner
        if os.path.isdir(SHM_DIR):
            sweep()
        self.pool = SlotPool(budget, prefix=f"afray_{_namespace()}_{os.getpid()}_")
        self.made: list[int] = []  # slots filled since the last report

    def put(self, array: Any) -> SlotRef | None:
        """Copy ``array`` into a free slot; ``None`` when it is too small for one or the budget is spent."""
        pid = to_slot(self.pool, array)
        if pid is None:
            return None
        self.made.append(pid[1])
        return SlotRef(self.owner, *pid)

    def take_made(self) -> tuple[int, ...]:
        made, self.made = tuple(self.made), []
        return made

    def free(self, sids: Iterable[int]) -> None:
        """The driver says nothing can read these slots any more: use them again."""
        self.pool.release(list(sids))

    def close(self) -> None:
        """Unlink every slot (views that still exist elsewhere stay valid)."""
        self.pool.close()

    def unlink_all(self) -> None:
        """The task is about to be killed: unlink every slot's name now (from any thread)."""
        self.pool.unlink_all()


class SlotLoader:
    """A reading task's (or the driver's) side: read-only views of slots, each load and release counted."""

    def __init__(self) -> None:
        self.reader = SlotReader()
        # deques: a finalizer may append while take() drains (the garbage collector runs it anywhere)
        self.loaded: deque[SlotKey] = deque()
        self.released: deque[SlotKey] = deque()

    def load(self, ref: SlotRef) -> Any:
        """The array in slot ``ref``: a read-only view, whose slot stays lent while anything holds it."""
        array = self.reader.array(ref.name, ref.shape, ref.dtype, ref.fortran)
        array.flags.writeable = False  # other tasks read the same slot
        key = (ref.owner, ref.sid)
        self.loaded.append(key)
        weakref.finalize(array, self.released.append, key)
        return array

    def take(self) -> tuple[tuple[SlotKey, ...], tuple[SlotKey, ...]]:
        """The loads and releases since the last call."""
        return _drain(self.loaded), _drain(self.released)

    def close(self) -> None:
        self.reader.close()


def _drain(queue: deque[SlotKey]) -> tuple[SlotKey, ...]:
    out: list[SlotKey] = []
    while True:
        try:
            out.append(queue.popleft())
        except IndexError:
            return tuple(out)


@dataclass(eq=False)
class SlotGroup:
    """The slots filled for one produced batch and its parts, and how many parts are still in the chain."""

    slots: list[SlotKey] = field(default_factory=list)
    left: int = 1


class SlotLedger:
    """The driver's count of every shared slot: which are free again, to be handed back to their owners.

    The scheduler gives each produced batch a ``SlotGroup`` (its parts share it), tells
    the ledger what each call's report says, and when each part leaves the chain.
    """

    def __init__(self) -> None:
        self.loader = SlotLoader()  # the driver's own reads (a ResultsConsumer's inputs)
        self._views: dict[SlotKey, int] = {}  # views made minus views gone
        self._left: set[SlotKey] = set()  # slots whose batch has left the chain, still viewed
        self._due: defaultdict[int, list[int]] = defaultdict(list)  # owner -> slots free again

    @property
    def viewed(self) -> int:
        """Slots that a task (or the driver) still holds a view of."""
        return len(self._views)

    def made(self, group: SlotGroup, owner: int, sids: Iterable[int]) -> None:
        """Task ``owner`` filled slots ``sids`` for the batch of ``group``."""
        group.slots.extend((owner, sid) for sid in sids)

    def counted(self, loaded: Iterable[SlotKey], released: Iterable[SlotKey]) -> None:
        """Views made and gone, from a report; and the driver's own since the last call."""
        self._count(loaded, released)
        loader = self.loader
        if loader.loaded or loader.released:
            self._count(*loader.take())

    def _count(self, loaded: Iterable[SlotKey], released: Iterable[SlotKey]) -> None:
        views = self._views
        for key in loaded:
            views[key] = views.get(key, 0) + 1
        for key in released:
            left = views.get(key, 0) - 1
            if left > 0:
                views[key] = left
                continue
            views.pop(key, None)
            if key in self._left:
                self._left.discard(key)
                self._due[key[0]].append(key[1])

    def finished(self, group: SlotGroup, dropped: bool = False) -> None:
        """A part of ``group``'s batch has left the chain (``dropped``: the batch never enters it)."""
        self.counted((), ())  # the driver's own views first
        group.left -= 1
        if group.left > 0 and not dropped:
            return
        group.left = 0
        slots, group.slots = group.slots, []
        for key in slots:
            if key in self._views:
                self._left.add(key)
            else:
                self._due[key[0]].append(key[1])

    def due(self, owner: int) -> tuple[int, ...]:
        """The slots of task ``owner`` that are free again (handed over once)."""
        sids = self._due.pop(owner, None)
        return tuple(sids) if sids else ()
