"""Tests for asyncflow.core.node: building nodes and wiring them with ``__call__`` (docs/design.md#data-path)."""

from __future__ import annotations

import pickle
import re
from typing import Any

import pytest

from asyncflow.core import ConsumerNode, Flow, ProcessorNode, ProducerNode


class Src(ProducerNode):
    """A producer that emits nothing (never run here)."""

    def next(self) -> Any:
        raise StopIteration


class Proc(ProcessorNode):
    """A processor with one extra configuration attribute."""

    def __init__(self, k: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k

    def process(self, *inputs: Any) -> Any:
        return inputs


class Sink(ConsumerNode):
    """A consumer that drops what it gets."""

    def consume(self, *inputs: Any) -> None:
        pass


class ForgetfulSrc(ProducerNode):
    """A producer whose ``__init__`` does not call ``super().__init__()``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def next(self) -> Any:
        raise StopIteration


class ForgetfulProc(ProcessorNode):
    """A processor whose ``__init__`` does not call ``super().__init__()``."""

    def __init__(self, k: int) -> None:
        self.k = k

    def process(self, x: Any) -> Any:
        return x


class ForgetfulSink(ConsumerNode):
    """A consumer whose ``__init__`` does not call ``super().__init__()``."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def consume(self, x: Any) -> None:
        pass


# -- __call__ -----------------------------------------------------------------


def test_call_returns_the_node_itself() -> None:
    a = Src()
    b = Proc()
    c = Sink()
    assert a() is a
    assert b(a) is b
    assert c(b) is c


def test_call_records_parents_in_the_order_given() -> None:
    a, b = Src(name="a"), Src(name="b")
    p = Proc(name="p")(a)
    forward = Proc(name="fwd")(a, b, p)
    backward = Proc(name="bwd")(p, b, a)
    assert forward.parents == (a, b, p)
    assert backward.parents == (p, b, a)
    assert forward.is_wired and backward.is_wired


def test_call_records_children_on_the_parents() -> None:
    a = Src(name="a")
    b = Proc(name="b")(a)
    c = Proc(name="c")(a)
    d = Sink(name="d")(b, c)
    assert set(a.children) == {b, c}
    assert b.children == (d,) and c.children == (d,)
    assert d.children == ()


def test_same_parent_twice_gives_two_inputs() -> None:
    a = Src(name="a")
    b = Proc(name="b")(a, a)
    assert b.parents == (a, a), "one positional input per parent given to __call__"
    assert b in a.children


def test_unwired_node_has_no_parents() -> None:
    b = Proc()
    assert not b.is_wired
    assert b.parents == ()


def test_second_call_raises_runtime_error_naming_the_node() -> None:
    a = Src(name="a")
    b = Proc(name="twice")(a)
    with pytest.raises(RuntimeError, match=r"'twice'.*create a new node"):
        b(a)
    assert b.parents == (a,), "the failed call left the wiring alone"
    assert a.children == (b,)


def test_second_call_raises_even_with_other_parents() -> None:
    a, other = Src(name="a"), Src(name="other")
    b = Proc(name="b2")(a)
    with pytest.raises(RuntimeError, match=r"'b2'.*create a new node"):
        b(other)
    assert b.parents == (a,)
    assert other.children == ()


def test_consumer_second_call_raises_runtime_error() -> None:
    a = Src(name="a")
    c = Sink(name="sink_twice")(a)
    with pytest.raises(RuntimeError, match=r"'sink_twice'.*create a new node"):
        c(a)


def test_processor_without_parents_is_an_error() -> None:
    b = Proc(name="orphan")
    with pytest.raises(ValueError, match=r"'orphan'.*parent"):
        b()
    assert not b.is_wired


@pytest.mark.parametrize("error", [ValueError, TypeError])
def test_producer_takes_no_parents(error: type[Exception]) -> None:
    a = Src(name="a")
    p = Src(name="prod")
    with pytest.raises(error, match=r"'prod'.*takes no parents"):
        p(a)
    assert p.parents == ()
    assert a.children == ()


def test_producer_called_without_parents_is_fine() -> None:
    p = Src(name="p")
    assert p() is p
    assert p.is_wired and p.parents == ()


@pytest.mark.parametrize("bad", [42, "a", None, Src])
def test_call_with_a_non_node_raises_type_error_naming_it(bad: object) -> None:
    a = Src(name="a")
    b = Proc(name="picky")
    with pytest.raises(TypeError, match=re.escape(repr(bad))) as info:
        b(a, bad)  # type: ignore[arg-type]
    assert "'picky'" in str(info.value)
    assert not b.is_wired, "a failed call wires nothing"
    assert a.children == ()
    assert b(a) is b, "the node can still be wired after a failed call"


def test_consumer_cannot_be_a_parent() -> None:
    a = Src(name="a")
    c = Sink(name="end")(a)
    b = Proc(name="after_end")
    with pytest.raises(ValueError, match=r"'after_end'.*'end'"):
        b(c)
    with pytest.raises(ValueError, match=r"'end'"):
        Sink(name="end2")(c)
    assert not b.is_wired
    assert c.children == ()


# -- names --------------------------------------------------------------------


def test_default_names_are_class_name_and_counter() -> None:
    nodes = [Proc() for _ in range(20)]
    names = [n.name for n in nodes]
    assert all(re.fullmatch(r"Proc_\d+", name) for name in names), names
    assert len(set(names)) == len(names), "default names are unique"
    numbers = [int(name.rsplit("_", 1)[1]) for name in names]
    assert numbers == sorted(numbers)


def test_default_names_use_the_concrete_class() -> None:
    assert re.fullmatch(r"Src_\d+", Src().name)
    assert re.fullmatch(r"Sink_\d+", Sink().name)
    assert re.fullmatch(r"ForgetfulProc_\d+", ForgetfulProc(1).name)


def test_default_names_are_unique_across_kinds_and_stable() -> None:
    nodes = [cls() for cls in (Src, Proc, Sink) for _ in range(5)]
    names = [n.name for n in nodes]
    assert len(set(names)) == len(names)
    assert [n.name for n in nodes] == names, "a node keeps its name"


def test_explicit_name_is_used_in_repr_and_messages() -> None:
    b = Proc(name="my-node")
    assert b.name == "my-node"
    assert "my-node" in repr(b)
    b(Src())
    with pytest.raises(RuntimeError, match="my-node"):
        b(Src())


@pytest.mark.parametrize(("bad", "error"), [("", ValueError), (3, TypeError), (b"x", TypeError)])
def test_bad_names_are_rejected(bad: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="name"):
        Proc(name=bad)  # type: ignore[arg-type]
    with pytest.raises(error, match="name"):
        Sink(name=bad)  # type: ignore[arg-type]
    with pytest.raises(error, match="name"):
        Src(name=bad)  # type: ignore[arg-type]


def test_name_none_means_default() -> None:
    assert re.fullmatch(r"Proc_\d+", Proc(name=None).name)


# -- processor options --------------------------------------------------------


def test_processor_defaults() -> None:
    b = Proc()
    assert b.nb_tasks == 1
    assert b.ordered is True
    assert b.on_error == "raise"
    assert b.device_type == "cpu"


def test_processor_options_are_kept() -> None:
    b = Proc(nb_tasks=4, device_type="gpu", ordered=False, on_error="skip")
    assert (b.nb_tasks, b.device_type, b.ordered, b.on_error) == (4, "gpu", False, "skip")
    assert Proc(3).k == 3, "a subclass's own positional arguments are its own"
    assert ProcessorNode(2).nb_tasks == 2, "nb_tasks is the first positional argument"


@pytest.mark.parametrize("bad", [0, -1])
def test_nb_tasks_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match=r"'workers'.*nb_tasks"):
        Proc(nb_tasks=bad, name="workers")


@pytest.mark.parametrize("bad", [1.5, "2", True, None, 2.0])
def test_nb_tasks_must_be_an_int(bad: object) -> None:
    with pytest.raises(TypeError, match=r"'workers'.*nb_tasks"):
        Proc(nb_tasks=bad, name="workers")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_nb_tasks_error_is_both_value_and_type_error(bad: object) -> None:
    # NodeConfigError: callers may catch either.
    with pytest.raises(ValueError, match="nb_tasks"):
        Proc(nb_tasks=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nb_tasks"):
        Proc(nb_tasks=bad)  # type: ignore[arg-type]


def test_nb_tasks_error_names_default_named_node() -> None:
    with pytest.raises(ValueError, match=r"Proc 'Proc_\d+'.*nb_tasks"):
        Proc(nb_tasks=0)


@pytest.mark.parametrize("bad", ["ignore", "RAISE", None, ""])
def test_on_error_must_be_raise_or_skip(bad: object) -> None:
    with pytest.raises(ValueError, match=r"'fragile'.*on_error"):
        Proc(on_error=bad, name="fragile")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'fragile_sink'.*on_error"):
        Sink(on_error=bad, name="fragile_sink")  # type: ignore[arg-type]


def test_consumer_on_error_is_kept() -> None:
    assert Sink().on_error == "raise"
    assert Sink(on_error="skip").on_error == "skip"


@pytest.mark.parametrize("bad", ["tpu", "GPU", None, 0])
def test_device_type_must_be_cpu_or_gpu(bad: object) -> None:
    with pytest.raises(ValueError, match=r"'dev'.*device_type"):
        Proc(device_type=bad, name="dev")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yes", 1, 0, None])
def test_ordered_must_be_a_bool(bad: object) -> None:
    with pytest.raises(TypeError, match=r"'ord'.*ordered"):
        Proc(ordered=bad, name="ord")  # type: ignore[arg-type]


# -- pickling -----------------------------------------------------------------


def test_pickle_keeps_configuration_and_drops_graph_links() -> None:
    a = Src(name="a")
    b = Proc(7, nb_tasks=3, device_type="gpu", ordered=False, on_error="skip", name="b")(a)
    c = Sink(name="c")(b)

    copy = pickle.loads(pickle.dumps(b))
    assert type(copy) is Proc
    assert copy.name == "b"
    assert (copy.k, copy.nb_tasks, copy.device_type, copy.ordered, copy.on_error) == (7, 3, "gpu", False, "skip")
    assert copy.parents == () and copy.children == ()
    assert not copy.is_wired

    a_copy = pickle.loads(pickle.dumps(a))
    assert a_copy.name == "a" and a_copy.children == ()

    assert b.parents == (a,) and b.children == (c,), "pickling does not change the original"
    assert a.children == (b,)


def test_pickle_fixes_the_default_name_first() -> None:
    b = Proc()
    copy = pickle.loads(pickle.dumps(b))
    assert copy.name == b.name, "the copy in a child process has the parent's name"


def test_pickled_copy_can_be_wired_anew() -> None:
    a = Src()
    b = Proc(name="b")(a)
    copy = pickle.loads(pickle.dumps(b))
    other = Src()
    assert copy(other).parents == (other,)


# -- subclasses that forget super().__init__() ---------------------------------


def test_forgetful_subclass_gets_a_name_and_defaults() -> None:
    b = ForgetfulProc(1)
    assert re.fullmatch(r"ForgetfulProc_\d+", b.name)
    assert b.name != ForgetfulProc(2).name
    assert (b.nb_tasks, b.ordered, b.on_error, b.device_type) == (1, True, "raise", "cpu")
    assert not b.is_wired and b.parents == () and b.children == ()


def test_forgetful_subclass_can_be_wired() -> None:
    a = ForgetfulSrc(3)
    b = ForgetfulProc(1)(a)
    c = ForgetfulSink("x")(b)
    assert b.parents == (a,) and c.parents == (b,)
    assert a.children == (b,) and b.children == (c,)
    with pytest.raises(RuntimeError, match=rf"'{b.name}'.*create a new node"):
        b(a)
    flow = Flow([a], [c])
    assert flow.nodes == (a, b, c)


def test_forgetful_nodes_do_not_share_children() -> None:
    # Graph links must be per instance, not class-level lists shared by all.
    a1, a2 = ForgetfulSrc(1), ForgetfulSrc(2)
    b1 = ForgetfulProc(1)(a1)
    b2 = ForgetfulProc(2)(a1)
    assert a1.children == (b1, b2)
    assert a2.children == ()
    assert ForgetfulProc(3).parents == ()


def test_forgetful_subclass_pickles() -> None:
    a = ForgetfulSrc(3)
    b = ForgetfulProc(5)(a)
    copy = pickle.loads(pickle.dumps(b))
    assert copy.name == b.name and copy.k == 5
    assert copy.parents == ()


def test_producer_called_twice_raises() -> None:
    p = Src(name="twice")
    assert p() is p
    with pytest.raises(RuntimeError, match="'twice' has already been called"):
        p()
