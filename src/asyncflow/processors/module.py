"""Module nodes: several processors run as one node, in one task's process.

``TaskModuleNode(entry, exit)`` takes a piece of the graph that is already wired
(``entry`` ... ``exit``) and runs it inside each of its own tasks: one process per
task instead of one per inner node, and no channel between the inner nodes.  It
is videoflow's ``TaskModuleNode`` (and ``ModuleNode``, which videoflow left
unfinished), written for asyncflow.

    b = IdentityProcessor()            # or already wired: IdentityProcessor()(a)
    c = Square()(b)
    d = JoinerProcessor()(b, c)
    m = TaskModuleNode(b, d)(a)        # a -> [b -> c -> d] -> consumer
    printer = CommandlineConsumer()(m)
"""

from __future__ import annotations

import graphlib
import inspect
import logging
from collections.abc import Iterable, Iterator
from typing import Any, Self, SupportsIndex

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, Node, OnError, ProcessorNode

from .onetask import OneTaskProcessorNode

__all__ = ["ModuleNode", "TaskModuleNode", "module_of"]

log = logging.getLogger("asyncflow")

_LIFECYCLE = ("open", "process", "close")


class TaskModuleNode(ProcessorNode):
    """Run the processors from ``entry_node`` to ``exit_node`` as one node.

    Each of the ``nb_tasks`` tasks runs the whole sub-graph in its process:
    ``process(*inputs)`` hands the inputs to ``entry_node.process``, then runs every
    inner node in topological order on its parents' outputs, and returns
    ``exit_node``'s output.  ``open()`` opens the inner nodes in that order (if one
    fails, those already open are closed again); ``close()`` closes them in reverse
    order, every one of them even if one raises (the first error is re-raised).

    Which nodes are inside: ``entry_node`` and every node below it, down to
    ``exit_node`` (not below it).  The sub-graph need not be a straight chain --
    videoflow's own example wraps ``b -> c``, ``(b, c) -> d`` -- but nothing
    outside may feed it except through the entry: every inner node other than
    ``entry_node`` reads only inner nodes.  An inner node whose output nothing
    reads (a dead end) still runs, as in videoflow.

    Wiring, as in videoflow: if ``entry_node`` was already called on its parents,
    the module takes those edges over (``entry_node`` is disconnected from them, and
    the module is already wired: do not call it); otherwise call the module on the
    parents, like any processor.  Nodes already wired to ``exit_node`` are rewired
    to read the module instead.  Once the module is built, its inner nodes belong
    to it, as in videoflow: calling a node on an inner node (giving it a child
    from outside) raises ``RuntimeError`` and leaves both as they were (read the
    module instead), and so does calling ``entry_node`` itself (call the module).

    Raises ``NodeConfigError`` (naming the node; it is a ``ValueError``, as
    videoflow raised) when: an inner node is not a processor; an inner node is a
    module itself (modules do not nest, as in videoflow) or already belongs to
    another module; ``exit_node`` is not below ``entry_node``; an inner node reads a node
    outside the module; an inner node has an ``async def`` ``open`` / ``process`` /
    ``close`` (or wraps an async function): the module calls them from its own,
    synchronous ``process()`` and could not await them; an inner node says
    ``on_error="skip"`` (the module applies one policy to the whole item: give
    ``on_error`` to the module); ``nb_tasks > 1`` with an inner
    ``OneTaskProcessorNode`` (its state would be split between processes).

    Deliberate choices: the inner nodes' own ``nb_tasks`` is ignored (the module's
    ``nb_tasks`` is what runs in parallel), as in videoflow; ``device_type`` is
    ``"gpu"`` when any inner node asks for it (videoflow refused GPU nodes in a
    module; in asyncflow ``device_type`` is a hint).  The module pickles with its
    inner nodes' configuration (an ordered list, and for each node the positions of
    the nodes it reads); their own graph links are not kept, as for any node.
    """

    def __init__(
        self,
        entry_node: ProcessorNode,
        exit_node: ProcessorNode,
        nb_tasks: int = 1,
        *,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(nb_tasks, "cpu", name=name, ordered=ordered, on_error=on_error)
        nodes, sources, exit_index = _plan(self, entry_node, exit_node)
        for node in nodes:
            _check_inner(self, node)
        if self.nb_tasks > 1:
            for node in nodes:
                if isinstance(node, OneTaskProcessorNode):
                    raise NodeConfigError(
                        f"{self.describe()}: {node.describe()} is a one-task processor (it keeps state across "
                        f"items), so the module cannot run as {self.nb_tasks} tasks; use nb_tasks=1"
                    )
        self.device_type = _device_type(nodes)
        self._nodes: tuple[ProcessorNode, ...] = nodes
        self._sources: tuple[tuple[int, ...], ...] = sources
        self._exit_index = exit_index
        self._opened = 0
        _relink(self, entry_node, exit_node)
        _seal(self, nodes)

    @property
    def nodes(self) -> tuple[ProcessorNode, ...]:
        """The inner nodes, in the order they run (``entry_node`` first)."""
        return self._nodes

    @property
    def entry_node(self) -> ProcessorNode:
        """The inner node that receives the module's inputs."""
        return self._nodes[0]

    @property
    def exit_node(self) -> ProcessorNode:
        """The inner node whose output is the module's output."""
        return self._nodes[self._exit_index]

    def open(self) -> None:
        """Open the inner nodes in order; if one fails, close those already open (reverse order) and raise."""
        self._opened = 0
        try:
            for node in self._nodes:
                _expect_sync(self, node, "open", node.open())
                self._opened += 1
        except BaseException as exc:
            try:
                self._close_opened()
            except Exception as close_exc:
                exc.add_note(f"while closing the inner nodes after that, another error: {close_exc!r}")
            raise

    def process(self, *inputs: Any) -> Any:
        """Run the inner nodes on one item; return ``exit_node``'s output."""
        values: list[Any] = [None] * len(self._nodes)
        for index, node in enumerate(self._nodes):
            args = inputs if index == 0 else tuple(values[j] for j in self._sources[index])
            try:
                values[index] = _expect_sync(self, node, "process", node.process(*args))
            except Exception as exc:
                exc.add_note(f"(raised by {node.describe()} inside {self.describe()})")
                raise
        return values[self._exit_index]

    def close(self) -> None:
        """Close the inner nodes that ``open()`` opened, in reverse order; raise the first error."""
        self._close_opened()

    def _close_opened(self) -> None:
        first: Exception | None = None
        opened, self._opened = self._opened, 0
        for node in reversed(self._nodes[:opened]):
            try:
                _expect_sync(self, node, "close", node.close())
            except Exception as exc:
                if first is None:
                    first = exc
                else:
                    log.error("%s: %s also failed to close: %r", self.describe(), node.describe(), exc)
        if first is not None:
            raise first

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_opened"] = 0  # run-time state: open() counts again in the new process
        return state


class ModuleNode(TaskModuleNode):
    """videoflow's ``ModuleNode``: a sub-graph packaged as one node, run as ONE task.

    videoflow 0.2.10 declared it (``ModuleNode(entry_node, exit_node)``) but its
    ``__call__`` was left unimplemented; here it is a :class:`TaskModuleNode` whose
    ``nb_tasks`` is fixed at 1 (no ``nb_tasks`` argument; setting another value
    raises ``NodeConfigError``).  Restriction: videoflow meant to expand a module
    into one task per inner node; asyncflow runs the whole sub-graph in one
    process, so the inner nodes never run in parallel with each other.  Use
    ``TaskModuleNode(..., nb_tasks=N)`` to run N copies of the sub-graph.
    """

    def __init__(
        self,
        entry_node: ProcessorNode,
        exit_node: ProcessorNode,
        *,
        name: str | None = None,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(entry_node, exit_node, 1, name=name, on_error=on_error)

    @property
    def nb_tasks(self) -> int:
        """Always 1."""
        return 1

    @nb_tasks.setter
    def nb_tasks(self, value: int) -> None:
        if value != 1 or isinstance(value, bool):
            raise NodeConfigError(
                f"{self.describe()} is a ModuleNode, which runs as one task: nb_tasks must stay 1, got {value!r}; "
                "use TaskModuleNode(entry, exit, nb_tasks=N) for several"
            )


# -- construction helpers -----------------------------------------------------


def _plan(
    module: TaskModuleNode, entry: object, exit_: object
) -> tuple[tuple[ProcessorNode, ...], tuple[tuple[int, ...], ...], int]:
    """The inner nodes in run order, the positions each one reads, and the exit's position."""
    owner = module.describe()
    for role, node in (("entry_node", entry), ("exit_node", exit_)):
        if not isinstance(node, ProcessorNode):
            raise NodeConfigError(f"{owner}: {role} must be a processor node, got {node!r} ({type(node).__name__})")
    assert isinstance(entry, ProcessorNode) and isinstance(exit_, ProcessorNode)
    # The inner nodes: entry and everything below it, down to exit (exit's
    # children stay outside: they will read the module).
    found: dict[int, Node] = {}
    stack: list[Node] = [entry]
    while stack:
        node = stack.pop()
        if id(node) in found:
            continue
        found[id(node)] = node
        if node is not exit_:
            stack.extend(reversed(node.children))
    if id(exit_) not in found:
        raise NodeConfigError(
            f"{owner}: {exit_.describe()} (exit_node) is not below {entry.describe()} (entry_node); "
            "wire the inner nodes to each other before building the module"
        )
    for node in found.values():
        if isinstance(node, TaskModuleNode):
            raise NodeConfigError(
                f"{owner}: {node.describe()} is a module; modules cannot be nested (as in videoflow): "
                "build one module from the inner nodes of both"
            )
        holder = module_of(node)
        if holder is not None:
            raise NodeConfigError(
                f"{owner}: {node.describe()} already belongs to {holder.describe()}; a node can be inside "
                "one module only"
            )
        if not isinstance(node, ProcessorNode):
            raise NodeConfigError(
                f"{owner}: {node.describe()} is inside the module (below {entry.describe()}, not below "
                f"{exit_.describe()}) but is not a processor; a module holds processors only"
            )
        if node is entry:
            continue
        for parent in node.parents:
            if id(parent) not in found:
                raise NodeConfigError(
                    f"{owner}: {node.describe()} reads {parent.describe()}, which is outside the module; "
                    f"inner nodes may read only {entry.describe()} (entry_node) and each other"
                )
    for child in exit_.children:
        if id(child) in found:
            raise NodeConfigError(
                f"{owner}: {child.describe()} reads {exit_.describe()} (exit_node) and is inside the module; "
                "the exit node must be the last node of the module"
            )
    graph = {key: [id(p) for p in node.parents] if node is not entry else [] for key, node in found.items()}
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter(graph)
    try:
        keys = list(sorter.static_order())
    except graphlib.CycleError as exc:
        names = " -> ".join(found[key].name for key in exc.args[1])
        raise NodeConfigError(f"{owner}: the module's nodes form a cycle: {names}") from None
    position = {key: i for i, key in enumerate(keys)}
    nodes: list[ProcessorNode] = []
    for key in keys:
        node = found[key]
        assert isinstance(node, ProcessorNode)  # checked above
        nodes.append(node)
    sources = tuple(() if node is entry else tuple(position[id(p)] for p in node.parents) for node in nodes)
    return tuple(nodes), sources, position[id(exit_)]


def _check_inner(module: TaskModuleNode, node: ProcessorNode) -> None:
    owner = module.describe()
    for method in _LIFECYCLE:
        if _is_async(getattr(node, method, None)):
            raise NodeConfigError(
                f"{owner}: {node.describe()} has an async {method}(); a module runs its inner nodes from its "
                "own synchronous process() and cannot await them. Leave that node outside the module"
            )
    function = getattr(node, "processor_function", None)
    if function is not None and _is_async(function):
        raise NodeConfigError(
            f"{owner}: {node.describe()} wraps the async function {getattr(function, '__name__', function)!r}; "
            "a module cannot await it. Leave that node outside the module"
        )
    if node.on_error != "raise":
        raise NodeConfigError(
            f"{owner}: {node.describe()} has on_error={node.on_error!r}; a module applies one policy to the "
            f"whole item: pass on_error={node.on_error!r} to the module instead"
        )


def _is_async(function: object) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _expect_sync(module: TaskModuleNode, node: Node, method: str, result: Any) -> Any:
    """Refuse an awaitable result (a method that turned async after the checks)."""
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # no "coroutine was never awaited" warning
        raise TypeError(
            f"{module.describe()}: {node.describe()}.{method}() returned an awaitable; "
            "nodes inside a module must be synchronous"
        )
    return result


def _device_type(nodes: tuple[ProcessorNode, ...]) -> DeviceType:
    return "gpu" if any(node.device_type == "gpu" for node in nodes) else "cpu"


def _relink(module: TaskModuleNode, entry: ProcessorNode, exit_: ProcessorNode) -> None:
    """Move the graph edges into and out of the sub-graph onto the module (videoflow's wiring)."""
    if entry.is_wired:
        parents = entry.parents
        for parent in {id(p): p for p in parents}.values():
            children = parent._children or []
            parent._children = [module if child is entry else child for child in children]
        module._parents = parents
        entry._parents = None
    outside = list(exit_.children)
    if outside:
        for child in outside:
            child._parents = tuple(module if p is exit_ else p for p in child.parents)
        module._children = list(outside)
        exit_._children = []


# -- inner nodes belong to their module ------------------------------------------
#
# videoflow flags the nodes of a module and its ``Node.__call__`` refuses them as
# parents (and refuses to wire them).  asyncflow's ``Node.__call__`` appends the new
# child to each parent's ``_children`` list, and refuses a node whose ``_parents``
# is already set; the module uses both: each inner node's ``_children`` becomes a
# ``_ModuleChildren`` list, which takes no new child (it undoes the half-done call
# and raises), and the entry node's ``_parents`` a ``_ModuleEntry`` (empty: the
# entry reads what the module receives), which makes a call on it fail.  Neither
# travels: a node's links are not pickled.


class _ModuleChildren(list[Node]):
    """The children of a node inside a module: fixed; a new one raises ``RuntimeError``."""

    def __init__(self, module: TaskModuleNode, node: Node, children: Iterable[Node] = ()) -> None:
        super().__init__(children)
        self.module = module
        self.node = node

    def append(self, child: Node) -> None:
        _refuse_child(self, child)

    def extend(self, children: Iterable[Node]) -> None:
        for child in children:
            _refuse_child(self, child)

    def insert(self, index: SupportsIndex, child: Node) -> None:
        _refuse_child(self, child)

    def __iadd__(self, children: Iterable[Node]) -> Self:  # type: ignore[override,misc]
        self.extend(children)
        return self


class _ModuleLabel(Node):
    """Stands for "the module" where a message lists the entry node's parents."""

    def __init__(self, module: TaskModuleNode) -> None:
        super().__init__(name=f"{module.describe()}, whose entry node it is (call the module instead)")


class _ModuleEntry(tuple[Node, ...]):
    """The ``_parents`` of a module's entry node: none (it reads the module's inputs), and it is wired."""

    module: TaskModuleNode

    def __new__(cls, module: TaskModuleNode) -> _ModuleEntry:
        self = super().__new__(cls)
        self.module = module
        return self

    def __iter__(self) -> Iterator[Node]:
        # Empty (``len() == 0``, so ``node.parents`` is ``()``), but what iterates it
        # directly -- ``Node.__call__``'s "already connected to ..." -- names the module.
        yield _ModuleLabel(self.module)


def module_of(node: Node) -> TaskModuleNode | None:
    """The module ``node`` is inside of (in this process, where the graph is built), or ``None``."""
    children = node._children
    if isinstance(children, _ModuleChildren):
        return children.module
    parents = node._parents
    if isinstance(parents, _ModuleEntry):
        return parents.module
    return None


def _seal(module: TaskModuleNode, nodes: tuple[ProcessorNode, ...]) -> None:
    for node in nodes:
        node._children = _ModuleChildren(module, node, node._children or ())
    nodes[0]._parents = _ModuleEntry(module)


def _refuse_child(children: _ModuleChildren, child: Node) -> None:
    """``child`` was being called on a node inside a module: undo that call, and raise."""
    parents = child._parents
    child._parents = None
    for parent in {id(p): p for p in parents or ()}.values():
        siblings = parent._children
        if siblings is not None and not isinstance(siblings, _ModuleChildren):
            siblings[:] = [c for c in siblings if c is not child]
    raise RuntimeError(
        f"{child.describe()} cannot read {children.node.describe()}: that node is inside "
        f"{children.module.describe()}, and a node inside a module cannot be given new children; "
        f"read the module instead ({type(child).__name__}()(module))"
    )
