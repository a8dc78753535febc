"""The byte format on a channel between two processes: frames of rows and signals.

A frame is a 9-byte header (body length ``Q``, kind ``B``) and a body.  A ``DATA``
body is the number of bytes it stands for (``Q``: its own size plus the shared
memory its rows point to, what flow control counts), the frame's birth times
(``dd``, see below) and a run of rows, each a
length (``Q``) and a pickle (protocol 5, see ``shm.dump_frozen``): a row that
holds a mutable value (a list, a dict, an array) is pickled when it is sent, so a
node may reuse and mutate its buffer after returning it: what it emitted is
already fixed.  Rows made only of immutable values (numbers, strings, bytes,
tuples of them) need no such copy: they travel as one ``ROWS`` frame, the pickle
of ``(born, newest, rows)``, which costs a tenth of pickling them one by one, or as one
``COLS`` frame, the pickle of ``(n, columns, complete, safe, born, newest)``: a column of ints
pickles four times faster than the same ints in one-value tuples, and the receiving task
reads its input column without taking the rows apart.

Every frame of rows says when its rows were born: ``born`` is when the producer
sent the oldest of them on (``time.time()``, comparable between processes and
machines), ``newest`` the same for the youngest; ``0.0`` when unknown.  With one
row a frame (REALTIME's default) both are that row's; item ages, ``max_age`` and
REALTIME's order checks read them, at no cost per row.
"""

from __future__ import annotations

import enum
import pickle
import struct
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "COLS",
    "CREDIT",
    "CREDIT_BODY",
    "DATA",
    "DATA_HEAD",
    "HEADER",
    "MSG",
    "RELEASE",
    "ROWS",
    "ROW_LEN",
    "SCALARS",
    "STOP",
    "FrameParser",
    "dump_cols",
    "dump_row",
    "frame",
    "immutable_size",
    "load",
    "split_rows",
]

HEADER: Final = struct.Struct("<QB")
ROW_LEN: Final = struct.Struct("<Q")
DATA_HEAD: Final = struct.Struct("<Qdd")  # declared bytes, born, newest
CREDIT_BODY: Final = struct.Struct("<QQ")

DATA: Final = 1  # rows pickled one by one, sender -> receiver
ROWS: Final = 5  # a list of immutable rows pickled at once, sender -> receiver
STOP: Final = 2  # STOP_FLOW: no row follows
CREDIT: Final = 3  # receiver -> sender: items and bytes taken by the receiving node
MSG: Final = 4  # one pickled control message (parent <-> child)
RELEASE: Final = 6  # receiver -> sender: shared-memory slots it has copied out (``q`` ids)
COLS: Final = 7  # rows as columns, ``(n, (column, ...), complete, safe, born, newest)`` pickled at once

_dumps = pickle.dumps
_ENUM_TYPE: Final = enum.EnumType  # enum members (ABSENT, STOP_FLOW) are singletons
_PROTOCOL: Final = 5


def dump_row(row: Any) -> bytes:
    """Pickle one row (raises whatever pickle raises for an unpicklable value)."""
    return _dumps(row, _PROTOCOL)


#: Immutable types of a fixed, small size (8 bytes counted each).
SCALARS: Final[frozenset[type]] = frozenset({int, float, complex, bool, type(None)})
_ATOMIC: Final = SCALARS | {str, bytes}


def immutable_size(row: tuple[Any, ...]) -> int:
    """A size estimate of ``row`` if nothing in it can be mutated, else ``-1``."""
    size = 16
    for value in row:
        kind = type(value)
        if kind is str or kind is bytes:
            size += len(value)
        elif kind in _ATOMIC or kind.__class__ is _ENUM_TYPE:
            size += 8
        elif kind is tuple:
            inner = immutable_size(value)
            if inner < 0:
                return -1
            size += inner
        else:
            return -1
    return size


def dump_cols(
    n: int, cols: tuple[Any, ...], complete: bool, safe: bool, born: float = 0.0, newest: float = 0.0
) -> bytes | None:
    """Pickle a ``COLS`` body now; ``None`` if a value would rather travel out of band (an array).

    ``complete``: no value is ``ABSENT``; ``safe``: every value is known to be immutable.
    """
    found: list[Any] = []
    body = _dumps((n, cols, complete, safe, born, newest), _PROTOCOL, buffer_callback=found.append)
    return None if found else body


def load(data: bytes | memoryview) -> Any:
    """Unpickle one row or message."""
    return pickle.loads(data)


def frame(kind: int, body: bytes = b"") -> bytes:
    """A whole frame as bytes."""
    return HEADER.pack(len(body), kind) + body


def split_rows(body: memoryview) -> tuple[int, float, float, list[memoryview]]:
    """Cut a ``DATA`` body into the bytes it stands for, its birth times and its rows' pickles."""
    rows: list[memoryview] = []
    declared, born, newest = DATA_HEAD.unpack_from(body, 0)
    off, end = DATA_HEAD.size, len(body)
    unpack = ROW_LEN.unpack_from
    while off < end:
        (n,) = unpack(body, off)
        off += 8
        rows.append(body[off : off + n])
        off += n
    return declared, born, newest, rows


class FrameParser:
    """Turns a byte stream into ``(kind, body)`` calls of ``on_frame``.

    A frame that arrives whole in one chunk is handed over without a copy; a large
    frame that fills the buffer exactly takes the buffer over, so a 48 MiB item is
    copied once on its way in, not twice.
    """

    __slots__ = ("_buf", "_on_frame")

    def __init__(self, on_frame: Callable[[int, memoryview], None]) -> None:
        self._buf = bytearray()
        self._on_frame = on_frame

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        if self._buf:
            self._buf += data
            self._parse_buffer()
            return
        view = memoryview(data)
        off = self._parse(view)
        if off < len(data):
            self._buf += view[off:]

    def _parse(self, view: memoryview) -> int:
        off, n = 0, len(view)
        unpack = HEADER.unpack_from
        on_frame = self._on_frame
        while n - off >= 9:
            length, kind = unpack(view, off)
            end = off + 9 + length
            if end > n:
                break
            on_frame(kind, view[off + 9 : end])
            off = end
        return off

    def _parse_buffer(self) -> None:
        buf = self._buf
        if len(buf) >= 9:
            length, _ = HEADER.unpack_from(buf, 0)
            if len(buf) == 9 + length:
                # Exactly one frame: hand the buffer itself over.
                self._buf = bytearray()
                self._on_frame(buf[8], memoryview(buf)[9:])
                return
        # Several frames or a tail: copy each complete body out, keep the rest.
        frames: list[tuple[int, bytes]] = []
        off, n = 0, len(buf)
        with memoryview(buf) as view:
            while n - off >= 9:
                length, kind = HEADER.unpack_from(view, off)
                end = off + 9 + length
                if end > n:
                    break
                frames.append((kind, bytes(view[off + 9 : end])))
                off = end
        del buf[:off]
        for kind, body in frames:
            self._on_frame(kind, memoryview(body))
