"""Async channels between processes, driven by the event loop.

A ``Link`` is one end of a channel: a pair of pipes between two tasks
(``pipes.PipeEnd``), a socket pair between a task and the parent.  A ``Sender``
writes rows to one or more links (round-robin when the next stage runs several
tasks) and a ``Receiver`` reads them back (restoring the order of several
upstream tasks, or taking whatever arrives first when order does not matter).
Rows travel in micro-batches that are written when full, when the sending task
yields to its event loop, or when the first row in them has waited
``flush_interval``.

Flow control is by credit: the receiver returns a ``CREDIT`` frame for what its
node has taken, and a sender keeps at most ``queue_size`` items (and about
``max_bytes_in_flight`` bytes) unacknowledged per link.  In ``BATCH`` a sender then
waits.  In ``REALTIME`` a sender is a leaky queue: it keeps at most ``queue_size``
unsent rows, dropping the oldest for a newer one (charged to the receiving node
as ``"full"``), hands a row to any link that has credit (a free worker of an
``nb_tasks`` stage takes the newest row, not the next in a rotation), and the
receiver acknowledges a row only when its node asks for the next one, so what a
node gets when it becomes free is the newest row, not one that waited while it
worked.  A receiver reading the workers of an ordered ``nb_tasks`` stage in
``REALTIME`` drops a row born before one it has already passed on (``"order"``):
output keeps capture order.

``STOP_FLOW`` is a frame of its own, written behind the last row.  A link that
ends without it (the peer process died) ends the stream too, and says so in
``Receiver.broken`` / ``BrokenChannelError``.
"""

from .blocks import Block, Frozen
from .link import BrokenChannelError, Link, connect
from .receiver import EMPTY, Receiver
from .sender import Sender
from .tee import Tee

__all__ = ["EMPTY", "Block", "BrokenChannelError", "Frozen", "Link", "Receiver", "Sender", "Tee", "connect"]
