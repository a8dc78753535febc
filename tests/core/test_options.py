"""Tests for asyncflow.core.options and ``Flow(flow_type=...)``: every knob validated (docs/design.md#options)."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import pytest

from asyncflow.core import BATCH, REALTIME, ConsumerNode, Flow, FlowOptions, FlowType, ProducerNode
from asyncflow.core.options import parse_options


class Src(ProducerNode):
    """A producer that emits nothing (never run here)."""

    def next(self) -> Any:
        raise StopIteration


class Sink(ConsumerNode):
    """A consumer that drops what it gets."""

    def consume(self, *inputs: Any) -> None:
        pass


def make_flow(**kwargs: Any) -> Flow:
    a = Src()
    return Flow([a], [Sink()(a)], **kwargs)


# -- flow_type ----------------------------------------------------------------


def test_default_flow_type_is_batch() -> None:
    assert make_flow().flow_type is BATCH


@pytest.mark.parametrize(
    ("given", "expected"),
    [("batch", BATCH), (BATCH, BATCH), ("realtime", REALTIME), (REALTIME, REALTIME)],
)
def test_flow_type_accepts_constants_and_strings(given: Any, expected: FlowType) -> None:
    flow = make_flow(flow_type=given)
    assert flow.flow_type is expected
    assert flow.flow_type == expected.value
    assert make_flow(flow_type=given).flow_type == given


def test_batch_and_realtime_are_distinct_flow_types() -> None:
    assert BATCH != REALTIME
    assert isinstance(BATCH, FlowType) and isinstance(REALTIME, FlowType)
    assert BATCH == "batch" and REALTIME == "realtime"


@pytest.mark.parametrize("bad", ["fast", "stream", "", None, 1, "batch "])
def test_unknown_flow_type_is_a_value_error_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match=rf"flow_type {re.escape(repr(bad))}"):
        make_flow(flow_type=bad)


# -- flow_options: defaults ---------------------------------------------------


@pytest.mark.parametrize("given", [None, {}])
def test_default_options(given: dict[str, Any] | None) -> None:
    options = make_flow(flow_options=given).options
    assert options == FlowOptions()
    # The defaults documented in FlowOptions' docstring.
    assert options.queue_size == 1024
    assert options.batch_size == 512
    assert options.flush_interval == 0.001
    assert options.max_bytes_in_flight == 64 * 1024 * 1024
    assert options.start_method == "spawn"
    assert options.log_level is None
    assert options.stop_timeout == 10.0
    assert options.engine == "local"


def test_options_are_immutable() -> None:
    options = make_flow().options
    with pytest.raises(AttributeError):
        options.queue_size = 1  # type: ignore[misc]


# -- flow_options: good values ------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("queue_size", 1, 1),
        ("queue_size", 1000, 1000),
        ("batch_size", 1, 1),
        ("batch_size", 128, 128),
        ("flush_interval", 0, 0.0),
        ("flush_interval", 0.05, 0.05),
        ("max_bytes_in_flight", 1, 1),
        ("max_bytes_in_flight", 10**9, 10**9),
        ("start_method", "spawn", "spawn"),
        ("log_level", None, None),
        ("log_level", logging.INFO, logging.INFO),
        ("log_level", "DEBUG", logging.DEBUG),
        ("log_level", "warning", logging.WARNING),
        ("stop_timeout", 0, 0.0),
        ("stop_timeout", 2.5, 2.5),
        ("engine", "local", "local"),
        ("progress", True, True),
    ],
)
def test_good_option_values_are_kept(key: str, value: Any, stored: Any) -> None:
    options = make_flow(flow_options={key: value}).options
    assert getattr(options, key) == stored
    # A queue_size below the default batch_size lowers batch_size too.
    skip = {key, "batch_size"} if key == "queue_size" else {key}
    others = {k: v for k, v in vars(FlowOptions()).items() if k not in skip}
    assert {k: getattr(options, k) for k in others} == others, "other keys keep their defaults"


def test_float_options_are_floats() -> None:
    options = make_flow(flow_options={"flush_interval": 0, "stop_timeout": 3}).options
    assert type(options.flush_interval) is float and type(options.stop_timeout) is float


def test_all_keys_at_once() -> None:
    given = {
        "queue_size": 16,
        "batch_size": 8,
        "flush_interval": 0.01,
        "max_bytes_in_flight": 1024,
        "start_method": "spawn",
        "log_level": "ERROR",
        "stop_timeout": 1.0,
        "engine": "local",
    }
    options = make_flow(flow_options=given).options
    assert options == FlowOptions(**{**given, "log_level": logging.ERROR})


# -- flow_options: bad values -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("queue_size", 0),
        ("queue_size", -1),
        ("queue_size", 1.5),
        ("queue_size", 8.0),
        ("queue_size", "8"),
        ("queue_size", True),
        ("queue_size", None),
        ("batch_size", 0),
        ("batch_size", 2.0),
        ("batch_size", "x"),
        ("batch_size", False),
        ("flush_interval", -0.1),
        ("flush_interval", "0.1"),
        ("flush_interval", math.nan),
        ("flush_interval", True),
        ("flush_interval", None),
        ("max_bytes_in_flight", 0),
        ("max_bytes_in_flight", 1.5),
        ("max_bytes_in_flight", "1"),
        ("start_method", "thread"),
        ("start_method", "SPAWN"),
        ("start_method", None),
        ("start_method", 1),
        ("log_level", "LOUD"),
        ("log_level", 1.5),
        ("log_level", True),
        ("log_level", [10]),
        ("stop_timeout", -1),
        ("stop_timeout", "x"),
        ("stop_timeout", math.nan),
        ("stop_timeout", None),
        ("engine", "threads"),
        ("engine", None),
    ],
)
def test_bad_option_value_is_a_value_error_naming_the_key(key: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=rf"flow_options\['{key}'\]"):
        make_flow(flow_options={key: bad})


@pytest.mark.parametrize("key", ["queue", "batchsize", "Queue_Size", "progress_bar", ""])
def test_unknown_key_is_a_value_error_naming_it(key: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown key {re.escape(repr(key))}"):
        make_flow(flow_options={"queue_size": 8, key: 1})


@pytest.mark.parametrize("bad", [[("queue_size", 8)], "queue_size=8", 8, (("queue_size", 8),)])
def test_flow_options_must_be_a_dict(bad: Any) -> None:
    with pytest.raises(TypeError, match="flow_options"):
        make_flow(flow_options=bad)


def test_batch_size_cannot_exceed_queue_size() -> None:
    with pytest.raises(ValueError, match=r"batch_size.*16.*queue_size.*8"):
        make_flow(flow_options={"queue_size": 8, "batch_size": 16})
    with pytest.raises(ValueError, match="batch_size"):
        make_flow(flow_options={"batch_size": FlowOptions().queue_size + 1})
    options = make_flow(flow_options={"queue_size": 8, "batch_size": 8}).options
    assert (options.queue_size, options.batch_size) == (8, 8)


def test_small_queue_size_lowers_the_default_batch_size() -> None:
    options = make_flow(flow_options={"queue_size": 8}).options
    assert options.queue_size == 8
    assert 1 <= options.batch_size <= 8


def test_parse_options_does_not_change_its_argument() -> None:
    given = {"queue_size": 8, "log_level": "INFO"}
    parse_options(given)
    assert given == {"queue_size": 8, "log_level": "INFO"}


def test_flow_checks_options_before_anything_runs() -> None:
    # A bad option fails Flow() itself, not run().
    a = Src()
    c = Sink()(a)
    with pytest.raises(ValueError, match="queue_size"):
        Flow([a], [c], BATCH, {"queue_size": 0})


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_start_methods_other_than_spawn_are_refused_with_the_reason(method: str) -> None:
    with pytest.raises(ValueError, match=rf"'{method}' is not supported.*spawn"):
        make_flow(flow_options={"start_method": method})
