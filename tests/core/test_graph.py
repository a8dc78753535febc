"""Tests for asyncflow.core.graph: the checks ``Flow()`` makes, the run order and the linearization.

Nothing here runs a flow: graphs are built, checked and walked in pure Python.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx
import pytest

from asyncflow.core import ConsumerNode, Flow, Node, ProcessorNode, ProducerNode
from asyncflow.core.graph import Graph, Stage, check_graph, linearize


class Src(ProducerNode):
    """A producer that emits nothing (never run here)."""

    def next(self) -> Any:
        raise StopIteration


class Proc(ProcessorNode):
    """A processor that returns its inputs."""

    def process(self, *inputs: Any) -> Any:
        return inputs


class Sink(ConsumerNode):
    """A consumer that drops what it gets."""

    def consume(self, *inputs: Any) -> None:
        pass


def names_in(message: str) -> set[str]:
    """The quoted or arrow-separated words of a message."""
    return set(re.findall(r"[\w-]+", message))


# -- cycles -------------------------------------------------------------------


def test_two_node_cycle_names_both_nodes() -> None:
    a = Src(name="src")
    x = Proc(name="cyc_x")
    y = Proc(name="cyc_y")(x)
    x(a, y)
    c = Sink(name="sink")(y)
    with pytest.raises(ValueError, match="cycle") as info:
        Flow([a], [c])
    assert {"cyc_x", "cyc_y"} <= names_in(str(info.value))


def test_three_node_cycle_names_every_node_on_it_and_no_other() -> None:
    a = Src(name="src")
    x = Proc(name="cyc_1")
    y = Proc(name="cyc_2")(x)
    z = Proc(name="cyc_3")(y)
    x(a, z)
    tail = Proc(name="tail")(z)
    c = Sink(name="sink")(tail)
    with pytest.raises(ValueError, match="cycle") as info:
        Flow([a], [c])
    words = names_in(str(info.value))
    assert {"cyc_1", "cyc_2", "cyc_3"} <= words
    assert not {"tail", "sink"} & words, "only the nodes on the cycle are named as its members"


def test_self_loop_is_a_cycle() -> None:
    a = Src(name="src")
    x = Proc(name="loop")
    x(a, x)
    c = Sink(name="sink")(x)
    with pytest.raises(ValueError, match=r"cycle.*loop"):
        check_graph([a], [c])


def test_cycle_without_a_producer_is_reported() -> None:
    a = Src(name="src")
    x = Proc(name="iso_x")
    y = Proc(name="iso_y")(x)
    x(y)
    c = Sink(name="sink")(a, y)
    with pytest.raises(ValueError, match="cycle") as info:
        Flow([a], [c])
    assert {"iso_x", "iso_y"} <= names_in(str(info.value))


# -- reachability -------------------------------------------------------------


def test_unwired_consumer_is_not_reachable() -> None:
    a = Src(name="src")
    Proc(name="p")(a)
    c = Sink(name="lonely")
    with pytest.raises(ValueError, match=r"'lonely'.*not reachable"):
        Flow([a], [c])


def test_consumer_behind_an_unwired_processor_is_not_reachable() -> None:
    a = Src(name="src")
    never_called = Proc(name="never_called")
    mid = Proc(name="mid")(never_called)
    c = Sink(name="sink")(mid)
    with pytest.raises(ValueError, match=r"'never_called'.*not reachable"):
        Flow([a], [c])


def test_one_unreachable_consumer_among_several_is_an_error() -> None:
    a = Src(name="src")
    good = Sink(name="good")(a)
    bad = Sink(name="bad")
    with pytest.raises(ValueError, match=r"'bad'.*not reachable"):
        Flow([a], [good, bad])


def test_producer_used_but_not_listed() -> None:
    a = Src(name="listed")
    hidden = Src(name="hidden")
    p = Proc(name="p")(a, hidden)
    c = Sink(name="sink")(p)
    with pytest.raises(ValueError, match=r"'hidden'.*not in the producers"):
        Flow([a], [c])


def test_producer_listed_but_reaching_no_consumer() -> None:
    a = Src(name="used")
    idle = Src(name="idle")
    Proc(name="dead_end")(idle)
    c = Sink(name="sink")(a)
    with pytest.raises(ValueError, match=r"'idle'.*does not reach"):
        Flow([a, idle], [c])


# -- the lists themselves -----------------------------------------------------


def small_graph() -> tuple[Src, Proc, Sink]:
    a = Src(name="a")
    b = Proc(name="b")(a)
    return a, b, Sink(name="c")(b)


@pytest.mark.parametrize(
    ("which", "pick"),
    [
        ("consumers", lambda a, b, c: ([a], [b])),
        ("consumers", lambda a, b, c: ([a], [c, a])),
        ("producers", lambda a, b, c: ([c], [c])),
        ("producers", lambda a, b, c: ([a, b], [c])),
    ],
)
def test_wrong_kind_in_a_list(which: str, pick: Callable[..., tuple[list[Node], list[Node]]]) -> None:
    producers, consumers = pick(*small_graph())
    wrong = (consumers if which == "consumers" else producers)[-1]
    with pytest.raises(ValueError, match=rf"'{wrong.name}'.*{which}"):
        Flow(producers, consumers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pick", "shown"),
    [
        (lambda a, b, c: ([1], [c]), "1"),
        (lambda a, b, c: ([a], ["c"]), "'c'"),
        (lambda a, b, c: ([a, None], [c]), "None"),
        (lambda a, b, c: (None, [c]), "NoneType"),
        (lambda a, b, c: ([a], 5), "int"),
        (lambda a, b, c: ("a", [c]), "str"),
        (lambda a, b, c: ({a}, [c]), "set"),
    ],
)
def test_non_nodes_are_a_type_error(pick: Callable[..., tuple[Any, Any]], shown: str) -> None:
    producers, consumers = pick(*small_graph())
    with pytest.raises(TypeError, match=re.escape(shown)):
        Flow(producers, consumers)


def test_empty_lists_are_a_value_error() -> None:
    a, _, c = small_graph()
    with pytest.raises(ValueError, match="producers"):
        Flow([], [c])
    with pytest.raises(ValueError, match="consumers"):
        Flow([a], [])
    with pytest.raises(ValueError, match="empty"):
        Flow((), ())


def test_node_listed_twice_is_a_value_error() -> None:
    a, _, c = small_graph()
    with pytest.raises(ValueError, match=r"'a'.*twice"):
        Flow([a, a], [c])
    with pytest.raises(ValueError, match=r"'c'.*twice"):
        Flow([a], [c, c])


def test_tuples_are_accepted() -> None:
    a, b, c = small_graph()
    assert Flow((a,), (c,)).nodes == (a, b, c)


def test_two_nodes_with_the_same_name() -> None:
    a = Src(name="a")
    b = Proc(name="twin")(a)
    c = Sink(name="twin")(b)
    with pytest.raises(ValueError, match=r"'twin'"):
        Flow([a], [c])


def test_explicit_name_clashing_with_a_default_name() -> None:
    a = Src()
    b = Proc(name=a.name)(a)
    c = Sink()(b)
    with pytest.raises(ValueError, match=re.escape(repr(a.name))):
        Flow([a], [c])


def test_same_name_outside_the_flow_is_fine() -> None:
    a, b, c = small_graph()
    Sink(name="b")(Src(name="a"))
    assert Flow([a], [c]).nodes == (a, b, c)


# -- pickling at Flow() time -------------------------------------------------


def _generator() -> Any:
    return (i for i in range(3))


BAD_VALUES = [
    pytest.param(threading.Lock, id="lock"),
    pytest.param(lambda: lambda x: x, id="lambda"),
    pytest.param(_generator, id="generator"),
    pytest.param(lambda: {"inner": threading.Lock()}, id="dict-holding-a-lock"),
]


@pytest.mark.parametrize("make_bad", BAD_VALUES)
@pytest.mark.parametrize("holder", ["producer", "processor", "consumer"])
def test_unpicklable_attribute_names_node_and_attribute(holder: str, make_bad: Callable[[], object]) -> None:
    a = Src(name="the_src")
    b = Proc(name="the_proc")(a)
    c = Sink(name="the_sink")(b)
    node = {"producer": a, "processor": b, "consumer": c}[holder]
    node.resource = make_bad()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=rf"'{node.name}'.*'resource'"):
        Flow([a], [c])


def test_class_defined_in_a_function_is_reported_with_the_node_name() -> None:
    class LocalProc(ProcessorNode):
        def process(self, x: Any) -> Any:
            return x

    a = Src(name="src")
    b = LocalProc(name="local_one")(a)
    c = Sink(name="sink")(b)
    with pytest.raises(ValueError, match=r"LocalProc 'local_one'"):
        Flow([a], [c])


def test_picklable_attributes_pass() -> None:
    a, b, c = small_graph()
    b.table = {"x": [1, 2.0, "3"], "y": (None, b"4")}  # type: ignore[attr-defined]
    b.other = a  # type: ignore[attr-defined]  # a node travels as configuration, without links
    assert Flow([a], [c]).nodes == (a, b, c)


# -- node settings changed after __init__ ------------------------------------


class SelfConfigured(ProcessorNode):
    """A processor that skips ``super().__init__()`` and sets its own settings."""

    def __init__(self, nb_tasks: Any, ordered: Any = True) -> None:
        self.nb_tasks = nb_tasks
        self.ordered = ordered

    def process(self, x: Any) -> Any:
        return x


@pytest.mark.parametrize(
    ("attr", "bad", "error"),
    [
        ("nb_tasks", 0, ValueError),
        ("nb_tasks", "2", TypeError),
        ("nb_tasks", True, TypeError),
        ("on_error", "ignore", ValueError),
        ("ordered", "yes", TypeError),
        ("device_type", "tpu", ValueError),
    ],
)
def test_processor_settings_changed_after_init_are_checked(attr: str, bad: object, error: type[Exception]) -> None:
    a, b, c = small_graph()
    setattr(b, attr, bad)
    with pytest.raises(error, match=rf"'b'.*{attr}"):
        Flow([a], [c])


@pytest.mark.parametrize("holder", ["producer", "consumer"])
def test_only_processors_run_as_several_tasks(holder: str) -> None:
    a, _, c = small_graph()
    node = a if holder == "producer" else c
    node.nb_tasks = 2
    with pytest.raises(ValueError, match=rf"'{node.name}'.*nb_tasks must be 1"):
        Flow([a], [c])


def test_subclass_setting_its_own_nb_tasks_is_checked() -> None:
    a = Src(name="src")
    ok = SelfConfigured(3)(a)
    assert Flow([a], [Sink()(ok)]).stages[1].width == 3
    a2 = Src(name="src2")
    bad = SelfConfigured(0)(a2)
    with pytest.raises(ValueError, match=rf"'{bad.name}'.*nb_tasks"):
        Flow([a2], [Sink()(bad)])
    a3 = Src(name="src3")
    unordered = SelfConfigured(2, ordered=None)(a3)
    with pytest.raises(TypeError, match=rf"'{unordered.name}'.*ordered"):
        Flow([a3], [Sink()(unordered)])


# -- run order ----------------------------------------------------------------


def edges_of(nodes: Sequence[Node]) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    g.add_nodes_from(nodes)
    for node in nodes:
        for parent in node.parents:
            g.add_edge(parent, node)
    return g


def assert_valid_order(graph: Graph, everything: Sequence[Node]) -> None:
    order = list(graph.order)
    assert len(order) == len(set(order)), "no node twice"
    g = edges_of(everything)
    assert nx.is_directed_acyclic_graph(g)
    wanted: set[Node] = set()
    for consumer in graph.consumers:
        wanted |= nx.ancestors(g, consumer) | {consumer}
    assert set(order) == wanted, "the flow is every ancestor of a consumer"
    pos = {node: i for i, node in enumerate(order)}
    for parent, child in g.subgraph(order).edges():
        assert pos[parent] < pos[child], f"{child!r} runs before its parent {parent!r}"
    n_producers = len(graph.producers)
    assert set(order[:n_producers]) == set(graph.producers), "producers come first"
    assert all(not isinstance(n, ProducerNode) for n in order[n_producers:])


def diamond() -> tuple[Src, Proc, Proc, Sink]:
    a = Src(name="A")
    b = Proc(name="B")(a)
    c = Proc(name="C")(a)
    d = Sink(name="D")(b, c)
    return a, b, c, d


def test_diamond_order_is_a_topological_sort() -> None:
    a, b, c, d = diamond()
    graph = check_graph([a], [d])
    assert graph.order[0] is a and graph.order[-1] is d
    sorts = [tuple(s) for s in nx.all_topological_sorts(edges_of([a, b, c, d]))]
    assert graph.order in sorts
    assert_valid_order(graph, [a, b, c, d])


def test_flow_exposes_the_checked_graph() -> None:
    a, _, _, d = diamond()
    flow = Flow([a], [d])
    assert flow.nodes == flow.graph.order
    assert flow.graph.producers == (a,) and flow.graph.consumers == (d,)
    assert flow.stages == linearize(flow.graph)
    assert [s.node for s in flow.stages] == list(flow.nodes)
    assert [s.index for s in flow.stages] == list(range(4))


def test_several_producers_come_first() -> None:
    p1, p2, p3 = Src(name="p1"), Src(name="p2"), Src(name="p3")
    x = Proc(name="x")(p3)
    z = Proc(name="z")(x, p1)
    c = Sink(name="c")(z, p2)
    graph = check_graph([p1, p2, p3], [c])
    assert graph.producers == (p1, p2, p3)
    assert_valid_order(graph, [p1, p2, p3, x, z, c])


def test_branch_to_an_unlisted_consumer_is_left_out() -> None:
    a = Src(name="a")
    b = Proc(name="b")(a)
    listed = Sink(name="listed")(b)
    unlisted = Sink(name="unlisted")(b)
    side = Proc(name="side")(a)
    graph = check_graph([a], [listed])
    assert graph.order == (a, b, listed)
    assert_valid_order(graph, [a, b, listed, unlisted, side])


def random_dag(seed: int) -> tuple[list[Src], list[Sink], list[Node]]:
    """A random DAG: 1-3 producers, 3-15 processors (some reading one parent twice),
    consumers anywhere, and every node read by someone."""
    rng = random.Random(seed)
    producers = [Src() for _ in range(rng.randint(1, 3))]
    pool: list[Node] = list(producers)
    consumers: list[Sink] = []
    for _ in range(rng.randint(3, 15)):
        parents = rng.sample(pool, rng.randint(1, min(3, len(pool))))
        if rng.random() < 0.2:
            parents.append(parents[0])
        pool.append(Proc(nb_tasks=rng.randint(1, 3))(*parents))
        if rng.random() < 0.3:
            consumers.append(Sink()(*rng.sample(pool, rng.randint(1, min(2, len(pool))))))
    leftovers = [n for n in pool if not n.children]
    if leftovers:
        consumers.append(Sink()(*leftovers))
    rng.shuffle(consumers)
    return producers, consumers, pool + consumers


@pytest.mark.parametrize("seed", range(40))
def test_random_dag_order_is_a_topological_sort(seed: int) -> None:
    producers, consumers, everything = random_dag(seed)
    graph = check_graph(producers, consumers)
    assert graph.producers == tuple(producers) and graph.consumers == tuple(consumers)
    assert_valid_order(graph, everything)
    assert len(graph.order) == len(everything)


# -- linearization ------------------------------------------------------------


def assert_minimal_layouts(graph: Graph, stages: Sequence[Stage]) -> None:
    """Each row carries exactly the values a later stage reads, and the indices agree."""
    order = graph.order
    pos = {node: i for i, node in enumerate(order)}
    assert [s.node for s in stages] == list(order)
    assert stages[0].in_layout == ()
    assert stages[-1].out_layout == ()
    for i, stage in enumerate(stages):
        assert stage.index == i
        assert stage.width == stage.node.nb_tasks
        if i:
            assert stage.in_layout == stages[i - 1].out_layout, "stages chain"
        read_later = {pos[p] for later in order[i + 1 :] for p in later.parents}
        expected = {k for k in range(i + 1) if k in read_later}
        assert set(stage.out_layout) == expected, f"stage {i} ({stage.node.name}) carries {stage.out_layout}"
        assert len(stage.out_layout) == len(expected), "no value twice in a row"
        assert len(stage.parent_slots) == len(stage.node.parents)
        for slot, parent in zip(stage.parent_slots, stage.node.parents, strict=True):
            assert stage.in_layout[slot] == pos[parent], f"{stage.node.name} reads the wrong slot for {parent.name}"
        assert len(stage.out_sources) == len(stage.out_layout)
        for source, k in zip(stage.out_sources, stage.out_layout, strict=True):
            if source == -1:
                assert k == i, "-1 stands for this stage's own value"
            else:
                assert stage.in_layout[source] == k
        if stage.passthrough:
            assert stage.out_layout == stage.in_layout


def fake(node: Node, inputs: Sequence[Any]) -> Any:
    """A value that spells out how it was computed, so any misrouting shows."""
    return (node.name, tuple(inputs))


def direct(node: Node, memo: dict[Node, Any]) -> Any:
    if node not in memo:
        memo[node] = fake(node, [direct(p, memo) for p in node.parents])
    return memo[node]


def simulate(stages: Sequence[Stage]) -> dict[Node, tuple[Any, ...]]:
    """Walk one row through the stages; return the inputs each consumer got."""
    row: tuple[Any, ...] = ()
    consumed: dict[Node, tuple[Any, ...]] = {}
    for stage in stages:
        assert len(row) == len(stage.in_layout)
        inputs = tuple(row[slot] for slot in stage.parent_slots)
        if isinstance(stage.node, ConsumerNode):
            consumed[stage.node] = inputs
        value = fake(stage.node, inputs)
        row = tuple(value if source == -1 else row[source] for source in stage.out_sources)
    assert row == (), "nothing is left over after the last stage"
    return consumed


def assert_rows_rebuild(graph: Graph, stages: Sequence[Stage]) -> None:
    consumed = simulate(stages)
    memo: dict[Node, Any] = {}
    assert set(consumed) == set(graph.consumers)
    for consumer in graph.consumers:
        assert consumed[consumer] == tuple(direct(p, memo) for p in consumer.parents), consumer.name


def test_diamond_linearization() -> None:
    a, b, c, d = diamond()
    graph = check_graph([a], [d])
    stages = linearize(graph)
    pos = {node: i for i, node in enumerate(graph.order)}
    by_node = {s.node: s for s in stages}

    assert by_node[a].in_layout == () and by_node[a].parent_slots == ()
    assert by_node[a].out_sources == (-1,) and by_node[a].out_layout == (pos[a],)
    assert by_node[d].out_layout == (), "the consumer is last: nothing travels on"
    last_reader_of_a = max(pos[b], pos[c])
    for stage in stages:
        carried = pos[a] in stage.out_layout
        assert carried == (stage.index < last_reader_of_a), f"A's value after stage {stage.index}"
    assert set(by_node[d].in_layout) == {pos[b], pos[c]}, "D receives exactly B's and C's values"
    d_inputs = [by_node[d].in_layout[s] for s in by_node[d].parent_slots]
    assert d_inputs == [pos[b], pos[c]], "D's inputs come in __call__ order (B, C)"
    for proc in (b, c):
        stage = by_node[proc]
        assert [stage.in_layout[s] for s in stage.parent_slots] == [pos[a]]
        assert pos[proc] in stage.out_layout
    assert_minimal_layouts(graph, stages)
    assert_rows_rebuild(graph, stages)


def test_diamond_with_reversed_inputs_rebuilds_rows() -> None:
    a = Src(name="A")
    b = Proc(name="B")(a)
    c = Proc(name="C")(a)
    d = Sink(name="D")(c, b)
    graph = check_graph([a], [d])
    stages = linearize(graph)
    assert_minimal_layouts(graph, stages)
    consumed = simulate(stages)
    assert consumed[d] == (("C", (("A", ()),)), ("B", (("A", ()),)))


def test_chain_linearization_carries_one_value() -> None:
    a = Src(name="a")
    b = Proc(name="b")(a)
    c = Proc(name="c")(b)
    d = Sink(name="d")(c)
    stages = linearize(check_graph([a], [d]))
    assert [s.in_layout for s in stages] == [(), (0,), (1,), (2,)]
    assert [s.out_layout for s in stages] == [(0,), (1,), (2,), ()]
    assert [s.parent_slots for s in stages] == [(), (0,), (0,), (0,)]
    assert [s.out_sources for s in stages] == [(-1,), (-1,), (-1,), ()]


def test_skip_connection_is_carried_past_intermediate_stages() -> None:
    a = Src(name="a")
    b = Proc(name="b")(a)
    c = Proc(name="c")(b)
    d = Proc(name="d")(c, a)
    e = Sink(name="e")(d)
    graph = check_graph([a], [e])
    assert graph.order == (a, b, c, d, e)
    stages = linearize(graph)
    assert [0 in s.out_layout for s in stages] == [True, True, True, False, False]
    assert_minimal_layouts(graph, stages)
    assert_rows_rebuild(graph, stages)


def test_repeated_parent_reads_one_slot_twice() -> None:
    a = Src(name="a")
    b = Proc(name="b")(a, a)
    c = Sink(name="c")(b, b)
    graph = check_graph([a], [c])
    stages = linearize(graph)
    assert stages[1].parent_slots == (0, 0)
    assert stages[2].parent_slots == (0, 0)
    assert_minimal_layouts(graph, stages)
    assert simulate(stages)[c] == (("b", (("a", ()), ("a", ()))),) * 2


def test_consumer_in_the_middle_passes_later_values_on() -> None:
    a = Src(name="a")
    early = Sink(name="early")(a)
    b = Proc(name="b")(a)
    late = Sink(name="late")(b, a)
    graph = check_graph([a], [early, late])
    stages = linearize(graph)
    assert_minimal_layouts(graph, stages)
    assert_rows_rebuild(graph, stages)
    pos = {node: i for i, node in enumerate(graph.order)}
    assert all(pos[early] not in s.out_layout for s in stages), "a consumer's value is never carried"


def test_several_producers_rebuild_rows() -> None:
    p1, p2 = Src(name="p1"), Src(name="p2")
    x = Proc(name="x")(p2, p1)
    c1 = Sink(name="c1")(x)
    c2 = Sink(name="c2")(p2)
    graph = check_graph([p1, p2], [c1, c2])
    stages = linearize(graph)
    assert_minimal_layouts(graph, stages)
    assert_rows_rebuild(graph, stages)


@pytest.mark.parametrize("seed", range(40))
def test_random_dag_linearization_rebuilds_rows(seed: int) -> None:
    producers, consumers, _ = random_dag(seed)
    graph = check_graph(producers, consumers)
    stages = linearize(graph)
    assert_minimal_layouts(graph, stages)
    assert_rows_rebuild(graph, stages)
