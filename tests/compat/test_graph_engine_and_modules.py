"""GraphEngine, utils.graph and TaskModuleNode as videoflow 0.2.10 has them (issue 17, items 1 and 2)."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import pytest

from asyncflow.compat.videoflow.consumers import CommandlineConsumer, VoidConsumer
from asyncflow.compat.videoflow.core import Flow
from asyncflow.compat.videoflow.core.graph import GraphEngine
from asyncflow.compat.videoflow.core.node import ModuleNode, ProcessorNode, TaskModuleNode
from asyncflow.compat.videoflow.processors import IdentityProcessor, JoinerProcessor
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.compat.videoflow.utils.graph import find_cycle, flatten, has_cycle, topological_sort
from asyncflow.core import GraphError


class Square(ProcessorNode):
    def process(self, x: int) -> int:
        return x * x


# -- utils.graph ------------------------------------------------------------------------------


def test_topological_sort_is_videoflow_s_depth_first_order() -> None:
    # a -> b -> c, a -> d, (c, d) -> e: videoflow's walk goes a, b, c, e (placed), d, then fronts each.
    a = IntProducer(0, 3)
    b = IdentityProcessor()(a)
    c = IdentityProcessor()(b)
    d = IdentityProcessor()(a)
    e = JoinerProcessor()(c, d)
    assert topological_sort([a]) == [a, d, b, c, e]
    order = topological_sort([a])
    for node in order:
        assert all(order.index(parent) < order.index(node) for parent in node.parents)


def test_topological_sort_of_several_producers_and_a_long_chain() -> None:
    a, z = IntProducer(0, 3), IntProducer(0, 3)
    j = JoinerProcessor()(a, z)
    assert topological_sort([a, z]) == [z, a, j]
    start = IntProducer(0, 3)
    node: Any = start
    chain: list[Any] = [start]
    for _ in range(3 * sys.getrecursionlimit()):
        node = IdentityProcessor()(node)
        chain.append(node)
    assert topological_sort([start]) == chain
    assert not has_cycle([start]), "no recursion: deeper than Python's recursion limit"


def test_has_cycle_and_find_cycle_name_the_cycle() -> None:
    b = IdentityProcessor(name="b")
    c = IdentityProcessor(name="c")(b)
    IdentityProcessor(name="d")(c)
    assert not has_cycle([b])
    b(c)
    assert has_cycle([b])
    assert [n.name for n in find_cycle([b]) or []] == ["b", "c", "b"]


def test_flatten() -> None:
    assert flatten([1, [2, (3, [4])], "ab", b"cd", []]) == [1, 2, 3, 4, "ab", b"cd"]


# -- GraphEngine ----------------------------------------------------------------------------------


def test_graph_engine_validates_like_flow() -> None:
    a = IntProducer(0, 3)
    b = IdentityProcessor()(a)
    c = CommandlineConsumer()(b)
    assert GraphEngine([a], [c]).topological_sort() == [a, b, c]

    unwired = IdentityProcessor(name="unwired")
    dangling = JoinerProcessor(name="dangling")(b, unwired)
    with pytest.raises(ValueError, match="unwired"):
        GraphEngine([a], [c])  # b's other child reads a node the producers never reach
    with pytest.raises(ValueError, match="unwired"):
        Flow([a], [c])
    assert dangling.children == () and b.children == (c, dangling), "the check leaves the graph as it was"

    with pytest.raises(ValueError, match="not reachable"):
        GraphEngine([IntProducer(0, 1)], [VoidConsumer()])
    with pytest.raises(TypeError):
        GraphEngine("a", [])  # type: ignore[arg-type]


def test_graph_engine_accepts_what_videoflow_s_did() -> None:
    a = IntProducer(0, 3)
    b = IdentityProcessor()(a)
    dead_end = Square()(b)
    unlisted = VoidConsumer()(b)
    engine = GraphEngine([a], [])
    assert engine.topological_sort() == [a, b, unlisted, dead_end]
    assert b.children == (dead_end, unlisted) and dead_end.children == (), "no hidden consumer left behind"
    two = GraphEngine([a, other := IntProducer(0, 1)], [CommandlineConsumer()(JoinerProcessor()(a, other))])
    assert len(two.topological_sort()) == 7, "several producers (videoflow: AttributeError)"


def test_a_cycle_is_a_value_error_even_with_no_consumer_below_it() -> None:
    a = IntProducer(0, 3)
    b = IdentityProcessor(name="loop-b")
    c = IdentityProcessor(name="loop-c")(b)
    b(c)
    head = JoinerProcessor()(a, c)
    with pytest.raises(GraphError, match=r"cycle: .*loop-"):
        GraphEngine([a], [])
    with pytest.raises(GraphError, match="cycle"):
        Flow([a], [])
    assert head.children == ()


def test_a_task_module_is_one_node_of_the_sort() -> None:
    zero = IntProducer(0, 3)
    a = IdentityProcessor()(zero)
    b = IdentityProcessor()(a)
    c = JoinerProcessor()(a, b)
    out = CommandlineConsumer()(c)
    module = TaskModuleNode(a, c)
    assert GraphEngine([zero], [out]).topological_sort() == [zero, module, out]
    assert Flow([zero], [out]).core_flow.nodes == (zero, module, out)


# -- TaskModuleNode: videoflow's wiring rules ---------------------------------------------------------


def test_a_module_takes_over_existing_parents_and_children() -> None:
    zero = IntProducer(0, 3)
    a = IdentityProcessor()(zero)
    b = Square()(a)
    out1, out2 = CommandlineConsumer()(b), VoidConsumer()(b)
    module = TaskModuleNode(a, b)
    assert zero.children == (module,) and module.parents == (zero,)
    assert module.children == (out1, out2) and out1.parents == (module,) and out2.parents == (module,)
    assert a.parents == () and b.children == ()


def test_an_inner_node_cannot_get_new_children_from_outside() -> None:
    zero = IntProducer(0, 3)
    a = IdentityProcessor(name="a")(zero)
    b = Square(name="b")(a)
    module = TaskModuleNode(a, b, name="m")
    other = IdentityProcessor(name="other")(zero)
    late = JoinerProcessor(name="late")
    with pytest.raises(RuntimeError, match=r"'late' cannot read Square 'b'.*inside TaskModuleNode 'm'"):
        late(other, b)
    # The call was undone: `late` can still be wired, and `other` did not keep it as a child.
    assert late.parents == () and other.children == ()
    assert late(other, module).parents == (other, module)
    with pytest.raises(RuntimeError, match="inside TaskModuleNode 'm'"):
        CommandlineConsumer()(a)
    assert a.children == (b,) and b.children == ()


def test_the_entry_node_cannot_be_called_once_inside_a_module() -> None:
    a = IdentityProcessor(name="entry")
    b = Square()(a)
    module = TaskModuleNode(a, b, name="m")
    with pytest.raises(RuntimeError, match=r"'entry' is already connected to TaskModuleNode 'm'"):
        a(IntProducer(0, 1))
    assert module(IntProducer(0, 1)).parents != ()


def test_modules_do_not_nest_and_a_node_belongs_to_one_module() -> None:
    zero = IntProducer(0, 3)
    a = IdentityProcessor()(zero)
    b = Square()(a)
    module = TaskModuleNode(a, b)
    g = IdentityProcessor()(module)
    h = IdentityProcessor()(g)
    with pytest.raises(ValueError, match="modules cannot be nested"):
        TaskModuleNode(module, h)
    with pytest.raises(ValueError, match="modules cannot be nested"):
        ModuleNode(module, h)
    assert module.children == (g,) and g.parents == (module,), "a refused module changes nothing"
    with pytest.raises(ValueError, match="already belongs to"):
        TaskModuleNode(a, b)


def test_inner_nodes_still_pickle_and_run_in_the_module() -> None:
    zero = IntProducer(0, 3)
    a = IdentityProcessor()(zero)
    b = Square()(a)
    module = TaskModuleNode(a, b)
    copy = pickle.loads(pickle.dumps(module))
    copy.open()
    assert copy.process(3) == 9
    copy.close()
    inner = pickle.loads(pickle.dumps(b))
    assert inner.children == () and inner(IdentityProcessor()).parents != (), "a copy is free again"
