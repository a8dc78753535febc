"""Graph checks, topological sort, and the routes rows take between tasks.

``check_graph`` turns the user's producer and consumer lists into a ``Graph``: the
nodes in run order, or a ``GraphError`` that names what is wrong.  ``route``
turns that order into ``Stage`` s: each stage runs one node and hands the stages
after it a *row*, a tuple holding the values that a later stage still reads
(``ABSENT`` where a value does not exist for this row, e.g. a producer that has
already ended).  A node runs on a row only when all its inputs are present, which
gives several producers their zip semantics.

Rows follow the graph's edges where it branches, and a chain where values must
meet again:

- Parts of the graph with no node in common are routed apart (each its own tree
  of stages): they never wait on, drop for or reorder each other.
- Along a chain, after each stage the nodes still to run are grouped by the
  edges between them.  When they fall into several groups, the stream splits
  there (a *tee*): each group gets its own copy of the rows, carrying only the
  columns that group reads, and runs as a chain of its own (split again further
  on as needed).  So a fan-out's branches keep their own pace, and an
  ``ordered=False`` node reorders only the rows of its own group.
- Nodes whose inputs come from several branches (a diamond, a join of two
  producers) stay in one chain: the row carries every value until the node that
  reads them together, so their pairs stay right whatever each stage does to a
  row (skip it, drop it, reorder it).

``linearize`` is the plain chain (every row visits every stage), which the Ray
engine runs.
"""

from __future__ import annotations

import dataclasses
import enum
import graphlib
import heapq
import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import GraphError
from .node import ConsumerNode, Node, ProducerNode, check_settings

__all__ = ["ABSENT", "Absent", "Graph", "Stage", "check_graph", "find_unpicklable", "linearize", "route"]


class Absent(enum.Enum):
    """Type of :data:`ABSENT`."""

    ABSENT = "ABSENT"

    def __repr__(self) -> str:
        return "ABSENT"


#: Marks a row slot that holds no value (the node did not run on this row).
ABSENT = Absent.ABSENT


@dataclass(frozen=True)
class Graph:
    """A checked graph: its nodes in run order (producers first)."""

    producers: tuple[ProducerNode, ...]
    consumers: tuple[ConsumerNode, ...]
    order: tuple[Node, ...]


@dataclass(frozen=True)
class Stage:
    """One node's place on the rows' route, and the row layouts around it.

    ``in_layout`` / ``out_layout`` list the positions (in ``Graph.order``) of the
    nodes whose values the incoming / outgoing row carries.  ``parent_slots``
    locates the node's inputs in the incoming row; ``out_sources`` builds the
    outgoing row: an index into the incoming row, or ``-1`` for this node's value.
    ``source`` is the stage whose rows this one receives (``-1``: none);
    ``targets`` the stages that receive this one's rows, each with the columns of
    the outgoing row it gets (all of them along a chain, fewer after a split).
    """

    index: int
    node: Node
    in_layout: tuple[int, ...]
    out_layout: tuple[int, ...]
    parent_slots: tuple[int, ...]
    out_sources: tuple[int, ...]
    source: int = -1
    targets: tuple[tuple[int, tuple[int, ...]], ...] = ()

    @property
    def width(self) -> int:
        """How many tasks (processes) run this stage."""
        return self.node.nb_tasks

    @property
    def passthrough(self) -> bool:
        """Whether the outgoing row is the incoming row unchanged."""
        return self.out_sources == tuple(range(len(self.in_layout)))


def _as_node_list(value: object, what: str, kind: type[Node]) -> list[Node]:
    if isinstance(value, Node):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"Flow: {what} must be a list of {kind.__name__}s, got {type(value).__name__}")
    nodes: list[Node] = []
    for item in value:
        if not isinstance(item, Node):
            raise TypeError(f"Flow: {what} must hold {kind.__name__}s, got {item!r} ({type(item).__name__})")
        if not isinstance(item, kind):
            raise GraphError(f"Flow: {item.describe()} is listed in {what} but is not a {kind.__name__}")
        if any(item is other for other in nodes):
            raise GraphError(f"Flow: {item.describe()} is listed twice in {what}")
        nodes.append(item)
    if not nodes:
        raise GraphError(f"Flow: {what} is empty; a flow needs at least one {kind.__name__}")
    return nodes


def check_graph(producers: object, consumers: object, *, check_pickle: bool = True) -> Graph:
    """Check the graph spanned by ``producers`` and ``consumers`` and sort it.

    Raises ``TypeError`` for non-nodes and ``GraphError`` (a ``ValueError``) for a
    cycle (naming its members), an unwired or unreachable node, a producer that is
    used but not listed (or listed but unused), duplicates, clashing names, and a
    node that does not pickle (naming the attribute that fails); ``NodeConfigError``
    for a node whose settings were changed to bad values after ``__init__``.
    """
    prods = _as_node_list(producers, "producers", ProducerNode)
    cons = _as_node_list(consumers, "consumers", ConsumerNode)

    # Nodes are keyed by id() throughout: a node class may define __eq__ or be
    # unhashable (a @dataclass), and two equal-looking nodes are still two nodes.
    listed = {id(p) for p in prods}
    # Walk up from the consumers: the flow is every ancestor of a consumer.
    found: dict[int, Node] = {}
    stack: list[Node] = list(reversed(cons))
    while stack:
        node = stack.pop()
        if id(node) in found:
            continue
        found[id(node)] = node
        if not node.is_wired:
            if isinstance(node, ConsumerNode):
                raise GraphError(
                    f"Flow: {node.describe()} is not reachable from the producers: it has no parents; "
                    f"call it on the node it reads, e.g. {type(node).__name__}()(parent)"
                )
            raise GraphError(
                f"Flow: {node.describe()} has no parents, so its consumers are not reachable from "
                "the producers; call it on the node it reads"
            )
        for parent in node.parents:
            if isinstance(parent, ProducerNode) and id(parent) not in listed:
                raise GraphError(
                    f"Flow: {parent.describe()} feeds {node.describe()} but is not in the producers list"
                )
            stack.append(parent)

    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter(
        {key: [id(p) for p in node.parents] for key, node in found.items()}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle: list[int] = exc.args[1]
        names = " -> ".join(found[key].name for key in cycle)
        raise GraphError(f"Flow: the graph has a cycle: {names}") from None

    for producer in prods:
        if id(producer) not in found:
            raise GraphError(f"Flow: {producer.describe()} does not reach any of the consumers")
    for consumer in cons:
        if _reaches_no_producer(consumer):
            raise GraphError(f"Flow: {consumer.describe()} is not reachable from the producers")

    by_name: dict[str, Node] = {}
    for node in found.values():
        other = by_name.setdefault(node.name, node)
        if other is not node:
            raise GraphError(
                f"Flow: two nodes are named {node.name!r} ({type(other).__name__} and "
                f"{type(node).__name__}); names must be unique within a flow"
            )

    order = _run_order(prods, list(found.values()))
    for node in order:
        check_settings(node)
    _check_task_names(order)
    if check_pickle:
        for node in order:
            problem = find_unpicklable(node)
            if problem is not None:
                raise GraphError(
                    f"Flow: {node.describe()} cannot be sent to its process: {problem}. "
                    "Nodes are pickled: keep unpicklable resources (locks, files, models, "
                    "lambdas) out of __init__ and create them in open()"
                )
    return Graph(
        producers=tuple(prods),  # type: ignore[arg-type]
        consumers=tuple(cons),  # type: ignore[arg-type]
        order=tuple(order),
    )


def _reaches_no_producer(node: Node) -> bool:
    seen: set[int] = set()
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, ProducerNode):
            return False
        if id(cur) not in seen:
            seen.add(id(cur))
            stack.extend(cur.parents)
    return True


def _check_task_names(order: list[Node]) -> None:
    """Worker tasks are named ``node[i]``: no node may be named like another's worker."""
    tasks: dict[str, Node] = {}
    for node in order:
        names = [node.name] if node.nb_tasks == 1 else [f"{node.name}[{i}]" for i in range(node.nb_tasks)]
        for task in names:
            other = tasks.setdefault(task, node)
            if other is not node:
                raise GraphError(
                    f"Flow: {node.describe()} and {other.describe()} would both run a task named "
                    f"{task!r}; rename one of them"
                )


def _run_order(producers: list[Node], nodes: list[Node]) -> list[Node]:
    """Kahn's sort: producers first in listed order, then nodes in discovery order."""
    rank = {id(node): i for i, node in enumerate(nodes)}
    for i, p in enumerate(producers):
        rank[id(p)] = -len(producers) + i
    waiting = {id(node): len({id(p) for p in node.parents}) for node in nodes}
    ready = [(rank[id(n)], id(n), n) for n in nodes if waiting[id(n)] == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        _, _, node = heapq.heappop(ready)
        order.append(node)
        for child in {id(c): c for c in node.children}.values():
            if id(child) in waiting:
                waiting[id(child)] -= 1
                if waiting[id(child)] == 0:
                    heapq.heappush(ready, (rank[id(child)], id(child), child))
    return order


def find_unpicklable(node: Node) -> str | None:
    """Return why ``node`` does not pickle (naming the attribute), or ``None`` if it does."""
    try:
        pickle.dumps(node, protocol=pickle.HIGHEST_PROTOCOL)
        return None
    except Exception as exc:
        whole = f"{type(exc).__name__}: {exc}"
    state = getattr(node, "__dict__", {})
    for attr, value in state.items():
        if attr in ("_parents", "_children"):
            continue
        try:
            pickle.Pickler(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        except Exception as exc:
            return f"attribute {attr!r} ({type(value).__name__}) does not pickle ({type(exc).__name__}: {exc})"
    return f"its class does not pickle ({whole}); define node classes at module level"


def linearize(graph: Graph) -> tuple[Stage, ...]:
    """Chain the nodes: each stage carries on only the values a later stage reads."""
    order = graph.order
    pos = {id(node): i for i, node in enumerate(order)}
    last_use = {i: -1 for i in range(len(order))}
    for j, node in enumerate(order):
        for parent in node.parents:
            last_use[pos[id(parent)]] = max(last_use[pos[id(parent)]], j)
    stages: list[Stage] = []
    in_layout: tuple[int, ...] = ()
    for i, node in enumerate(order):
        out_layout = tuple(k for k in range(i + 1) if last_use[k] > i)
        parent_slots = tuple(in_layout.index(pos[id(p)]) for p in node.parents)
        out_sources = tuple(-1 if k == i else in_layout.index(k) for k in out_layout)
        targets = ((i + 1, tuple(range(len(out_layout)))),) if i + 1 < len(order) and out_layout else ()
        stages.append(Stage(i, node, in_layout, out_layout, parent_slots, out_sources, i - 1, targets))
        in_layout = out_layout
    return tuple(stages)


def route(graph: Graph) -> tuple[Stage, ...]:
    """The stages of ``graph``, rows split where the graph branches for good (see the module doc).

    Stages are listed so that a stage's source comes before it; a graph that is
    one chain gives the same stages as ``linearize``.
    """
    order = graph.order
    pos = {id(node): i for i, node in enumerate(order)}
    parents = [[pos[id(p)] for p in node.parents] for node in order]
    stages: list[Stage] = []

    def groups(members: list[int]) -> list[list[int]]:
        """``members`` (positions, in run order) split into the groups that edges among them connect."""
        inside = set(members)
        root = {m: m for m in members}

        def find(m: int) -> int:
            while root[m] != m:
                root[m] = root[root[m]]
                m = root[m]
            return m

        for m in members:
            for p in parents[m]:
                if p in inside:
                    root[find(m)] = find(p)
        found: dict[int, list[int]] = {}
        for m in members:
            found.setdefault(find(m), []).append(m)
        return list(found.values())

    def chain(members: list[int], in_layout: tuple[int, ...], source: int) -> int:
        """Add the stages of one group; return the index of its first stage."""
        first = len(stages)
        layout, prev = in_layout, source
        remaining = list(members)
        while remaining:
            if len(stages) > first:  # one stage of this group run: may the rest split?
                parts = groups(remaining)
                if len(parts) > 1:
                    splits: list[tuple[int, tuple[int, ...]]] = []
                    for part in parts:
                        read = {p for m in part for p in parents[m]}
                        sub_layout = tuple(k for k in layout if k in read)
                        start = chain(part, sub_layout, prev)
                        splits.append((start, tuple(layout.index(k) for k in sub_layout)))
                    _set_targets(stages, prev, tuple(splits))
                    return first
            i = remaining.pop(_next_of(remaining, parents, order))
            read = {p for m in remaining for p in parents[m]}
            out_layout = tuple(sorted(k for k in {*layout, i} if k in read))
            parent_slots = tuple(layout.index(p) for p in parents[i])
            out_sources = tuple(-1 if k == i else layout.index(k) for k in out_layout)
            index = len(stages)
            stages.append(Stage(index, order[i], layout, out_layout, parent_slots, out_sources, prev))
            if prev >= 0 and index != first:
                _set_targets(stages, prev, ((index, tuple(range(len(layout)))),))
            layout, prev = out_layout, index
        return first

    for part in groups(list(range(len(order)))):
        chain(part, (), -1)
    return tuple(stages)


def _next_of(remaining: list[int], parents: list[list[int]], order: tuple[Node, ...]) -> int:
    """Which of ``remaining`` (in run order) to run next: the first ready one, an unordered one last.

    A node whose output order is not kept (``ordered=False`` with several tasks)
    reorders every row that passes it; run after everything that is ready and does
    not depend on it, those nodes get their rows first and in order, and any that
    no longer share a node with it split off before it.
    """
    waiting = set(remaining)
    fallback = -1
    for k, m in enumerate(remaining):
        if any(p in waiting for p in parents[m]):
            continue
        node = order[m]
        if node.nb_tasks > 1 and not node.ordered:
            if fallback < 0:
                fallback = k
            continue
        return k
    return fallback if fallback >= 0 else 0


def _set_targets(stages: list[Stage], index: int, targets: tuple[tuple[int, tuple[int, ...]], ...]) -> None:
    stages[index] = dataclasses.replace(stages[index], targets=targets)
