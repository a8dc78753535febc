"""Flows for the CLI tests: ``asyncflow run tests.monitor.sample_flow:make_flow``.

The node classes live in ``tests.helpers`` (spawned task processes import them from
there); the flows are built in functions, so importing this module builds nothing.
"""

from __future__ import annotations

import os

from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow
from tests.helpers import Add, CountProducer, FailAt, Pair, Recorder, SizedCountProducer, Sleepy


def make_flow() -> Flow:
    """numbers -> slow (10 ms an item) -> plus_one -> sink: ``slow`` is the bottleneck."""
    a = SizedCountProducer(40, name="numbers")
    b = Sleepy(0.01, name="slow")(a)
    c = Add(1, name="plus_one")(b)
    d = VoidConsumer(name="sink")(c)
    return Flow([a], [d])


def make_diamond() -> Flow:
    """numbers -> (left, right) -> pair -> sink (not run by the tests: drawn only)."""
    a = CountProducer(3, name="numbers")
    left = Add(1, name="left")(a)
    right = Add(2, name="right", nb_tasks=2)(a)
    pair = Pair(name="pair")(right, left)
    return Flow([a], [VoidConsumer(name="sink")(pair)])


def make_failing_flow() -> Flow:
    """numbers -> fail (raises on item 3) -> sink."""
    a = CountProducer(10, name="numbers")
    b = FailAt(3, name="fail")(a)
    return Flow([a], [VoidConsumer(name="sink")(b)])


def _endless(delay: float) -> Flow:
    """An endless producer into a ``delay`` s node, small queues; items recorded to $ASYNCFLOW_TEST_RECORD."""
    a = CountProducer(None, name="numbers")
    b = Sleepy(delay, name="slow")(a)
    return Flow([a], [Recorder(os.environ["ASYNCFLOW_TEST_RECORD"], name="sink")(b)], flow_options={"queue_size": 4})


def make_endless_flow() -> Flow:
    """Endless, 20 ms an item: a first Ctrl-C drains it at once."""
    return _endless(0.02)


def make_stuck_flow() -> Flow:
    """Endless, 1 s an item: draining after a first Ctrl-C takes seconds."""
    return _endless(1.0)


not_a_flow = 42


def returns_nothing() -> None:
    """A factory that forgot to return its flow."""
