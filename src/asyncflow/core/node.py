"""The graph builder: node kinds and the ``__call__`` that wires them.

A node is built in two steps, as in videoflow: ``__init__`` configures it and
``__call__(*parents)`` gives it its inputs, once.  Subclasses implement ``next``
(producers), ``process`` (processors) or ``consume`` (consumers), and may implement
``open`` / ``close``; each of these may be ``async def``.

A node crosses a process boundary by pickling: its configuration travels, its
place in the graph (parents, children) does not.

Batch methods.  Next to its per-item method a node may define a faster
equivalent that takes a whole block of rows (up to ``flow_options["batch_size"]``):

- ``next_batch(max_items)``: return 1 to ``max_items`` next items (what the source
  has now: do not wait to fill the batch); raise ``StopIteration`` (or return an
  empty sequence) at the end;
- ``process_batch(*columns)``: one list per parent, in the parents' order, holding
  that parent's items; return a sequence with one output per row;
- ``consume_batch(*columns)``: the same, nothing returned.

They may be ``async def``.  The engine calls one when the node's class defines it
at least as far down the class tree as the per-item method (``batch_method``): a
subclass that overrides only ``process`` of a built-in node that has
``process_batch`` gets its ``process`` called, not the inherited batch method.
Rows whose inputs are not all there (zip semantics) are left out of the lists.
The lists handed in are the node's own: it may change or keep them.  The items
of a returned sequence are fixed when the batch method returns, so they must be
distinct objects; the sequence itself may be reused on the next call.  With
``on_error="skip"`` a batch that raises is run again one row at a time through
the per-item method, so that only the failing items are dropped; without it the
batch's rows are lost with the flow.
The built-in ``IntProducer``, ``IterableProducer``, ``IdentityProcessor`` and
``VoidConsumer`` have them.
"""

from __future__ import annotations

import inspect
import itertools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from .errors import NodeConfigError

__all__ = [
    "ConsumerNode",
    "DeviceType",
    "Node",
    "OnError",
    "ProcessorNode",
    "ProducerNode",
    "batch_method",
    "check_settings",
]

OnError = Literal["raise", "skip"]
DeviceType = Literal["cpu", "gpu"]

_counters: defaultdict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))


def _check_nb_tasks(owner: str, nb_tasks: object) -> int:
    if isinstance(nb_tasks, bool) or not isinstance(nb_tasks, int):
        raise NodeConfigError(
            f"{owner}: nb_tasks must be a positive int, got {nb_tasks!r} ({type(nb_tasks).__name__})"
        )
    if nb_tasks < 1:
        raise NodeConfigError(f"{owner}: nb_tasks must be a positive int (1 or more), got {nb_tasks}")
    return nb_tasks


class Node:
    """Base of every node: a name, and its parents once ``__call__`` has run."""

    #: Graph links; class-level defaults keep a subclass that forgets
    #: ``super().__init__()`` usable (it still gets a name and can be wired).
    _parents: tuple[Node, ...] | None = None
    _children: list[Node] | None = None
    _name: str | None = None

    #: How many processes run this node (only processors may have more than one).
    nb_tasks: int = 1
    #: Whether output order equals input order when ``nb_tasks > 1``.
    ordered: bool = True
    #: What an exception in the node's per-item method does: stop the flow with
    #: ``FlowError`` (``"raise"``) or drop the item, count it and go on (``"skip"``).
    on_error: OnError = "raise"
    device_type: DeviceType = "cpu"
    #: A GPU task with no device left runs on the CPU (True) or fails the run (False).
    cpu_fallback: bool = True
    #: What each task of the node reserves on Ray (``{"CPU": 2, "my_accel": 1}``); ``None``:
    #: the engine's default.  The local engine ignores it (docs/ray.md, "Resources").
    resources: dict[str, float] | None = None

    _kind: ClassVar[str] = "node"

    def __init__(self, *, name: str | None = None, resources: dict[str, float] | None = None) -> None:
        if name is not None:
            if not isinstance(name, str) or not name:
                raise NodeConfigError(f"{type(self).__name__}: name must be a non-empty str, got {name!r}")
            self._name = name
        if resources is not None:
            self.resources = _check_resources(self.describe(), resources)

    # -- identity -----------------------------------------------------------
    @property
    def name(self) -> str:
        """The node's name, used in every message and error (class name plus a counter by default)."""
        if self._name is None:
            cls = type(self).__name__
            self._name = f"{cls}_{next(_counters[cls])}"
        return self._name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def describe(self) -> str:
        """``"IdentityProcessor 'b'"``: how messages name this node."""
        return f"{type(self).__name__} {self.name!r}"

    # -- wiring -------------------------------------------------------------
    @property
    def parents(self) -> tuple[Node, ...]:
        """The nodes whose outputs feed this one, in ``__call__`` order."""
        return self._parents or ()

    @property
    def children(self) -> tuple[Node, ...]:
        """The nodes this one feeds."""
        return tuple(self._children or ())

    @property
    def is_wired(self) -> bool:
        """Whether ``__call__`` has run on this node."""
        return self._parents is not None

    def __call__(self, *parents: Node) -> Any:
        """Make ``parents`` this node's inputs and return the node (``B = Proc()(A)``)."""
        if self._parents is not None:
            raise RuntimeError(
                f"{self.describe()} is already connected to "
                f"{', '.join(p.name for p in self._parents)}; a node is called once: create a new node"
            )
        if not parents:
            raise NodeConfigError(f"{self.describe()} needs at least one parent node: write node(parent)")
        for parent in parents:
            if not isinstance(parent, Node):
                raise TypeError(
                    f"{self.describe()} can only be called on nodes, got {parent!r} ({type(parent).__name__})"
                )
            if isinstance(parent, ConsumerNode):
                raise NodeConfigError(
                    f"{self.describe()} cannot take {parent.describe()} as a parent: consumers have no output"
                )
        self._parents = tuple(parents)
        for parent in {id(p): p for p in parents}.values():
            if parent._children is None:
                parent._children = []
            parent._children.append(self)
        return self

    # -- lifecycle (overridden by subclasses; may be async) -----------------
    def open(self) -> Any:
        """Acquire resources, once, in the node's own process before the first item."""
        return None

    def close(self) -> Any:
        """Release resources, once, at the end (also after an error) if ``open()`` returned."""
        return None

    # -- pickling: configuration travels, graph links do not ---------------
    def __getstate__(self) -> dict[str, Any]:
        self.name  # noqa: B018 - fix the default name before the node is copied
        state = dict(self.__dict__)
        state.pop("_parents", None)
        state.pop("_children", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # One attribute at a time rather than ``self.__dict__.update(state)``: touching
        # ``__dict__`` turns the instance's attributes into a plain dict, and every
        # attribute read on a task's hot path (``self._current`` in ``next``...) then
        # takes a generic lookup, 1.3-3x slower a call.  ``object.__setattr__`` skips
        # a subclass's own ``__setattr__``, as ``update`` did; a class attribute that
        # intercepts setting (a property) keeps the old way.
        cls = type(self)
        if any(hasattr(getattr(cls, key, None), "__set__") for key in state):
            self.__dict__.update(state)
            return
        for key, value in state.items():
            object.__setattr__(self, key, value)


class ProducerNode(Node):
    """A source: ``next()`` returns the next item and raises ``StopIteration`` at the end.

    An ``async def next`` may raise ``StopAsyncIteration`` instead (Python turns a
    ``StopIteration`` raised inside a coroutine into ``RuntimeError``; asyncflow
    recognises that too).
    """

    _kind = "producer"

    _called = False

    def __call__(self, *parents: Node) -> Any:
        """A producer takes no parents: ``P()`` is allowed once, like any node's call."""
        if parents:
            raise NodeConfigError(
                f"{self.describe()} is a producer and takes no parents; "
                "its items come from next(), not from other nodes"
            )
        if self._called:
            raise RuntimeError(f"{self.describe()} has already been called; a node is called once")
        self._called = True
        return self

    @property
    def is_wired(self) -> bool:
        return True

    def next(self) -> Any:
        """Return the next item; raise ``StopIteration`` when there are no more."""
        raise NotImplementedError(f"{type(self).__name__} must implement next()")


class ProcessorNode(Node):
    """A transformation: ``process(*inputs)`` gets one input per parent and returns the output.

    ``nb_tasks=N`` runs the node in N processes; output order equals input order
    unless ``ordered=False``.  ``on_error="skip"`` drops (and counts) an item whose
    ``process`` raised instead of stopping the flow.

    ``resources`` (Ray only): what each task reserves on the cluster, e.g.
    ``{"CPU": 2, "GPU": 1, "my_accel": 1}`` (``"memory"`` in bytes); by default a
    task reserves a share of a CPU (and one GPU for ``device_type="gpu"``).

    ``device_type="gpu"`` gives each of the node's tasks a GPU of its own: the
    task's process sees only that device (``CUDA_VISIBLE_DEVICES``), chosen among
    the devices the user's own ``CUDA_VISIBLE_DEVICES`` allows (or
    ``flow_options["gpus"]``).  When no device is left for a task, it runs on the
    CPU (no GPU visible) if ``cpu_fallback=True`` (the default, as in videoflow),
    and ``run()`` fails naming the node if ``cpu_fallback=False``.
    """

    _kind = "processor"

    def __init__(
        self,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
        cpu_fallback: bool = True,
        resources: dict[str, float] | None = None,
    ) -> None:
        super().__init__(name=name, resources=resources)
        self.nb_tasks = _check_nb_tasks(self.describe(), nb_tasks)
        self.device_type = _check_device_type(self.describe(), device_type)
        self.ordered = _check_ordered(self.describe(), ordered)
        self.on_error = _check_on_error(self.describe(), on_error)
        if not isinstance(cpu_fallback, bool):
            raise NodeConfigError(f"{self.describe()}: cpu_fallback must be True or False, got {cpu_fallback!r}")
        self.cpu_fallback = cpu_fallback

    def process(self, *inputs: Any) -> Any:
        """Return the output for one item of each parent."""
        raise NotImplementedError(f"{type(self).__name__} must implement process(*inputs)")


class ConsumerNode(Node):
    """A sink: ``consume(*inputs)`` gets one input per parent and returns nothing.

    ``on_error="skip"`` drops (and counts) an item whose ``consume`` raised.
    ``metadata`` is accepted for videoflow compatibility and has no effect.
    """

    _kind = "consumer"

    def __init__(
        self,
        metadata: bool = False,
        *,
        name: str | None = None,
        on_error: OnError = "raise",
        resources: dict[str, float] | None = None,
    ) -> None:
        super().__init__(name=name, resources=resources)
        self.metadata = metadata
        self.on_error = _check_on_error(self.describe(), on_error)

    def consume(self, *inputs: Any) -> Any:
        """Take one item of each parent."""
        raise NotImplementedError(f"{type(self).__name__} must implement consume(*inputs)")


def batch_method(node: Node, per_item: str) -> Any:
    """``node``'s ``<per_item>_batch`` method if it may stand in for ``per_item`` (see above), else ``None``.

    It may when the class that defines it is the class that defines the per-item
    method, or a subclass of it.
    """
    batch_name = f"{per_item}_batch"
    if _set_on_instance(node, batch_name):  # the user's own choice
        return getattr(node, batch_name)
    owner_item = owner_batch = None
    for klass in type(node).__mro__:
        if owner_item is None and per_item in vars(klass):
            owner_item = klass
        if owner_batch is None and batch_name in vars(klass):
            owner_batch = klass
    if owner_batch is None or owner_item is None or not issubclass(owner_batch, owner_item):
        return None
    return getattr(node, batch_name)


_MISSING = object()


def _set_on_instance(node: Node, name: str) -> bool:
    """Whether ``name`` is an attribute of ``node`` itself rather than of its class.

    Found without ``vars(node)``: reading an instance's ``__dict__`` turns its
    attributes into a plain dict, which makes every later attribute read slower
    (see ``Node.__setstate__``), and this runs in the task, before the hot loop.
    """
    value = getattr(node, name, _MISSING)
    if value is _MISSING:
        return False
    found = inspect.getattr_static(type(node), name, _MISSING)
    if found is _MISSING:
        return True
    get = getattr(type(found), "__get__", None)
    expected = get(found, node, type(node)) if get is not None else found
    if value is expected:
        return False
    # A method comes back as a new bound method on each read: compare what it binds.
    func = getattr(value, "__func__", _MISSING)
    return not (
        func is not _MISSING
        and func is getattr(expected, "__func__", None)
        and getattr(value, "__self__", None) is getattr(expected, "__self__", None)
    )


def _check_on_error(owner: str, on_error: object) -> OnError:
    if on_error == "raise":
        return "raise"
    if on_error == "skip":
        return "skip"
    raise NodeConfigError(f"{owner}: on_error must be 'raise' or 'skip', got {on_error!r}")


def _check_device_type(owner: str, device_type: object) -> DeviceType:
    if device_type == "cpu":
        return "cpu"
    if device_type == "gpu":
        return "gpu"
    raise NodeConfigError(f"{owner}: device_type must be 'cpu' or 'gpu', got {device_type!r}")


def _check_resources(owner: str, resources: object) -> dict[str, float] | None:
    """``resources`` as a fresh dict (names to amounts >= 0), or ``None``; ``NodeConfigError`` if malformed."""
    if resources is None:
        return None
    if not isinstance(resources, dict):
        raise NodeConfigError(
            f"{owner}: resources must be a dict of resource names to amounts (e.g. {{'CPU': 2, 'my_accel': 1}}), "
            f"got {resources!r} ({type(resources).__name__})"
        )
    checked: dict[str, float] = {}
    for key, amount in resources.items():
        if not isinstance(key, str) or not key:
            raise NodeConfigError(f"{owner}: resources: a resource name must be a non-empty str, got {key!r}")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < float("inf"):
            raise NodeConfigError(f"{owner}: resources[{key!r}] must be a number >= 0, got {amount!r}")
        checked[key] = amount
    return checked


def _check_ordered(owner: str, ordered: object) -> bool:
    if not isinstance(ordered, bool):
        raise NodeConfigError(f"{owner}: ordered must be True or False, got {ordered!r}")
    return ordered


def check_settings(node: Node) -> None:
    """Check a node's settings again when a ``Flow`` is built.

    Attributes assigned after ``__init__`` (``node.nb_tasks = 0``), or by a subclass
    that skips ``super().__init__()``, never went through the constructor's checks;
    left alone they fail late in the engine (a producer run as two tasks hangs it).
    Raises ``NodeConfigError`` naming the node.
    """
    owner = node.describe()
    nb_tasks = _check_nb_tasks(owner, node.nb_tasks)
    if nb_tasks != 1 and not isinstance(node, ProcessorNode):
        raise NodeConfigError(
            f"{owner}: only processors run as several tasks; nb_tasks must be 1 for a {node._kind}, got {nb_tasks}"
        )
    _check_on_error(owner, node.on_error)
    _check_ordered(owner, node.ordered)
    _check_device_type(owner, node.device_type)
    _check_resources(owner, node.resources)
