"""Differential tests: random graphs run by the engine against a plain in-process oracle.

- ``test_random_dag_matches_oracle`` (25 examples, each a real run in child processes):
  1-3 producers of 0-12 small ints, up to 8 ordered processors (fan-in 1-3, repeated
  parents allowed, ``nb_tasks`` 1-3), 1-3 consumers (+1 when a producer would
  otherwise reach none).  Every consumer must receive exactly, and in order, what
  the row semantics of docs/design.md#absent give.
- ``test_random_unordered_dag_matches_oracle_as_multisets`` (10 examples): the same
  with up to 4 processors, some ``ordered=False``; compared as multisets.
- ``test_cycles_and_run_order_match_networkx`` (300 examples, no process started):
  random, possibly cyclic wirings; ``Flow()`` must raise ``ValueError`` naming a
  cycle iff networkx finds one among the nodes the consumers depend on, and
  otherwise ``flow.nodes`` must be a topological order of exactly those nodes.

Row semantics (the oracle): rows are numbered k = 0, 1, 2, ...; producer p has a
value in row k iff k < len(p); any other node has a value in row k iff all its
parents do (a processor's value is then ``mix(j, parent values)``); a consumer
receives the row-k inputs iff all its parents have a value in row k.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import psutil
import pytest
import uvloop
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from asyncflow.core import Flow
from asyncflow.core.node import Node
from tests.helpers_dag import MixProcessor, RowRecorder, SeqProducer, mix, rows

#: Extra worker processes (nb_tasks - 1, summed) a random DAG may ask for: keeps one run near a second.
_EXTRA_WORKER_BUDGET = 6
#: A run that takes longer than this is a hang (a small graph runs in well under 5 s).
_RUN_TIMEOUT = 60.0

_ENGINE_SETTINGS = settings(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# -- graph descriptions --------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    parents: tuple[int, ...]  # indices into producers + processors, all earlier than this node
    nb_tasks: int
    ordered: bool


@dataclass(frozen=True)
class Dag:
    producers: tuple[tuple[int, ...], ...]
    processors: tuple[Proc, ...]
    consumers: tuple[tuple[int, ...], ...]

    @property
    def n_nodes(self) -> int:
        return len(self.producers) + len(self.processors)

    def parents_of(self, i: int) -> tuple[int, ...]:
        return () if i < len(self.producers) else self.processors[i - len(self.producers)].parents


def _ancestors(dag: Dag, start: tuple[int, ...]) -> set[int]:
    seen: set[int] = set()
    stack = list(start)
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(dag.parents_of(i))
    return seen


@st.composite
def dags(draw: st.DrawFn, *, max_processors: int, unordered: bool) -> Dag:
    n_prod = draw(st.integers(1, 3))
    producers = tuple(tuple(draw(st.lists(st.integers(0, 99), max_size=12))) for _ in range(n_prod))
    budget = _EXTRA_WORKER_BUDGET
    processors: list[Proc] = []
    for j in range(draw(st.integers(0, max_processors))):
        parents = tuple(draw(st.lists(st.integers(0, n_prod + j - 1), min_size=1, max_size=3)))
        nb_tasks = min(draw(st.integers(1, 3)), 1 + budget)
        budget -= nb_tasks - 1
        ordered = not (unordered and draw(st.booleans()))
        processors.append(Proc(parents, nb_tasks, ordered))
    n_nodes = n_prod + len(processors)
    consumers: list[tuple[int, ...]] = []
    for c in range(draw(st.integers(1, 3))):
        parents = tuple(draw(st.lists(st.integers(0, n_nodes - 1), min_size=1, max_size=2)))
        if c == 0:  # the first consumer reads the last node, so most processors take part
            parents = (n_nodes - 1, *parents[1:])
        consumers.append(parents)
    # Every listed producer must reach a consumer: give the unreached ones a consumer of their own.
    reached = _ancestors(Dag(producers, tuple(processors), tuple(consumers)), tuple(i for c in consumers for i in c))
    unreached = tuple(p for p in range(n_prod) if p not in reached)
    if unreached:
        consumers.append(unreached)
    return Dag(producers, tuple(processors), tuple(consumers))


def oracle(dag: Dag) -> list[list[list[int]]]:
    """What each consumer receives, per the row semantics (docs/design.md#absent), evaluated in-process."""
    n_rows = max((len(p) for p in dag.producers), default=0)
    values: list[list[int | None]] = [[p[k] if k < len(p) else None for k in range(n_rows)] for p in dag.producers]
    for j, proc in enumerate(dag.processors):
        column: list[int | None] = []
        for k in range(n_rows):
            inputs = [values[i][k] for i in proc.parents]
            column.append(None if None in inputs else mix(j, [x for x in inputs if x is not None]))
        values.append(column)
    received: list[list[list[int]]] = []
    for parents in dag.consumers:
        got: list[list[int]] = []
        for k in range(n_rows):
            inputs = [values[i][k] for i in parents]
            if None not in inputs:
                got.append([x for x in inputs if x is not None])
        received.append(got)
    return received


def build(dag: Dag, out: Path) -> tuple[Flow, list[Path], list[Node]]:
    nodes: list[Node] = [SeqProducer(values, name=f"p{i}") for i, values in enumerate(dag.producers)]
    producers = list(nodes)
    for j, proc in enumerate(dag.processors):
        node = MixProcessor(j, nb_tasks=proc.nb_tasks, ordered=proc.ordered, name=f"m{j}")
        nodes.append(node(*(nodes[i] for i in proc.parents)))
    paths = [out / f"c{c}.jsonl" for c in range(len(dag.consumers))]
    consumers = [
        RowRecorder(path, name=f"c{c}")(*(nodes[i] for i in parents))
        for c, (path, parents) in enumerate(zip(paths, dag.consumers, strict=True))
    ]
    return Flow(producers, consumers), paths, nodes + consumers


def assert_topological(order: tuple[Node, ...], expected: set[Node]) -> None:
    assert len(order) == len(set(order)), "a node appears twice in flow.nodes"
    assert set(order) == expected, "flow.nodes must hold exactly the nodes the consumers depend on"
    pos = {node: i for i, node in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert pos[parent] < pos[node], f"{parent.name} -> {node.name} goes backwards in the run order"


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def run_flow(flow: Flow) -> None:
    """Run one flow on a fresh uvloop; fail if it hangs or leaves a process behind."""
    before = _children()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(flow.run(), _RUN_TIMEOUT))
    deadline = time.monotonic() + 3.0
    while (left := _children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind after run(): {sorted(left)}"


def _expected_nodes(dag: Dag, nodes: list[Node]) -> set[Node]:
    wanted = _ancestors(dag, tuple(i for c in dag.consumers for i in c))
    return {nodes[i] for i in wanted} | set(nodes[dag.n_nodes :])


# -- engine vs oracle ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(360)  # room for hypothesis to shrink a failure (normally ~20 s)
@settings(_ENGINE_SETTINGS, max_examples=25)
@given(dag=dags(max_processors=8, unordered=False))
def test_random_dag_matches_oracle(dag: Dag) -> None:
    with tempfile.TemporaryDirectory(prefix="asyncflow-diff-") as tmp:
        flow, paths, nodes = build(dag, Path(tmp))
        event(f"task processes: {sum(node.nb_tasks for node in flow.nodes)}")
        assert_topological(flow.nodes, _expected_nodes(dag, nodes))
        run_flow(flow)
        got = [rows(path) for path in paths]
    assert got == oracle(dag)


def _multiset(received: list[list[int]]) -> list[str]:
    return sorted(json.dumps(r) for r in received)


@pytest.mark.slow
@pytest.mark.timeout(360)  # room for hypothesis to shrink a failure (normally ~20 s)
@settings(_ENGINE_SETTINGS, max_examples=10)
@given(dag=dags(max_processors=4, unordered=True))
def test_random_unordered_dag_matches_oracle_as_multisets(dag: Dag) -> None:
    with tempfile.TemporaryDirectory(prefix="asyncflow-diff-") as tmp:
        flow, paths, _ = build(dag, Path(tmp))
        run_flow(flow)
        got = [rows(path) for path in paths]
    expected = oracle(dag)
    assert [_multiset(g) for g in got] == [_multiset(e) for e in expected]
    # Per-branch semantics: an unordered node reorders only what flows through it. A
    # consumer with no unordered ancestor (ordered=False with several tasks) gets the
    # oracle's rows in order, whatever unordered nodes run elsewhere in the graph.
    for c, parents in enumerate(dag.consumers):
        reorderers = [
            i
            for i in _ancestors(dag, parents)
            if i >= len(dag.producers)
            and not dag.processors[i - len(dag.producers)].ordered
            and dag.processors[i - len(dag.producers)].nb_tasks > 1
        ]
        if not reorderers:
            event("a consumer beside unordered nodes")
            assert got[c] == expected[c], f"consumer {c} has no unordered ancestor but got its rows reordered"


# -- cycles and run order vs networkx -------------------------------------------


@dataclass(frozen=True)
class Wiring:
    n_producers: int
    parents: tuple[tuple[int, ...], ...]  # per processor: -1-p for producer p, else a processor index
    consumers: tuple[tuple[int, ...], ...]  # per consumer: processor indices


@st.composite
def wirings(draw: st.DrawFn) -> Wiring:
    n_prod = draw(st.integers(1, 2))
    n = draw(st.integers(1, 8))
    forward_only = draw(st.booleans())  # half the graphs acyclic by construction
    parents = []
    for j in range(n):
        top = j - 1 if forward_only else n - 1
        parents.append(tuple(draw(st.lists(st.integers(-n_prod, top), min_size=1, max_size=3))))
    consumers = tuple(
        tuple(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True)))
        for _ in range(draw(st.integers(1, 2)))
    )
    return Wiring(n_prod, tuple(parents), consumers)


_NAME = re.compile(r"\b(?:src\d+|v\d+|sink\d+)\b")


def _names_a_cycle(message: str, graph: nx.DiGraph) -> bool:
    """Whether the nodes named in ``message`` form a cycle of ``graph``."""
    tokens = _NAME.findall(message)
    named = set(tokens)
    if not named or not named <= set(graph):
        return False
    sub = graph.subgraph(named)
    if len(named) == 1:
        (only,) = named
        if not sub.has_edge(only, only):
            return False
    elif not nx.is_strongly_connected(sub):
        return False
    if " -> " in message:  # "a -> b -> c -> a": consecutive names must be edges (either direction)
        seq = tokens[:-1] if len(tokens) > 1 and tokens[0] == tokens[-1] else tokens
        pairs = list(zip(seq, seq[1:] + seq[:1], strict=True))
        if len(set(seq)) != len(seq):
            return False
        return all(graph.has_edge(a, b) for a, b in pairs) or all(graph.has_edge(b, a) for a, b in pairs)
    return True


@settings(max_examples=300, deadline=None, database=None, print_blob=True)
@given(w=wirings())
def test_cycles_and_run_order_match_networkx(w: Wiring) -> None:
    producers = [SeqProducer((1, 2, 3), name=f"src{i}") for i in range(w.n_producers)]
    procs = [MixProcessor(j, name=f"v{j}") for j in range(len(w.parents))]
    for proc, parents in zip(procs, w.parents, strict=True):  # created first, wired after: cycles possible
        proc(*(procs[i] if i >= 0 else producers[-1 - i] for i in parents))
    consumers = [RowRecorder("/dev/null", name=f"sink{c}")(*(procs[i] for i in cs)) for c, cs in enumerate(w.consumers)]

    graph = nx.DiGraph()
    for node in [*producers, *procs, *consumers]:
        graph.add_node(node.name)
        for parent in node.parents:
            graph.add_edge(parent.name, node.name)
    relevant = set().union(*(nx.ancestors(graph, c.name) | {c.name} for c in consumers))
    flow_graph = graph.subgraph(relevant)
    unused = [p.name for p in producers if p.name not in relevant]
    cyclic = not nx.is_directed_acyclic_graph(flow_graph)
    event("cyclic" if cyclic else ("unused producer" if unused else "acyclic"))

    if cyclic:
        with pytest.raises(ValueError) as info:
            Flow(producers, consumers)
        message = str(info.value)
        # A graph with both faults may report either (the contract fixes no precedence).
        names_unused = any(re.search(rf"\b{name}\b", message) for name in unused)
        assert _names_a_cycle(message, flow_graph) or names_unused, message
    elif unused:
        with pytest.raises(ValueError, match="|".join(rf"\b{name}\b" for name in unused)):
            Flow(producers, consumers)
    else:
        flow = Flow(producers, consumers)
        assert_topological(flow.nodes, {n for n in [*producers, *procs, *consumers] if n.name in relevant})
