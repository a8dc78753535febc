"""Tests for asyncflow.producers.basic: IntProducer and IterableProducer, called in-process."""

from __future__ import annotations

import pickle
import time

import pytest

from asyncflow.core.errors import NodeConfigError
from asyncflow.producers import IntProducer, IterableProducer


def drain(producer: IntProducer | IterableProducer, limit: int = 1000) -> list[object]:
    items = []
    for _ in range(limit):
        try:
            items.append(producer.next())
        except StopIteration:
            return items
    raise AssertionError(f"{producer!r} did not stop after {limit} items")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    return calls


# -- IntProducer --------------------------------------------------------------


def test_int_producer_end_is_inclusive() -> None:
    producer = IntProducer(0, 4)
    producer.open()
    assert drain(producer) == [0, 1, 2, 3, 4]


def test_int_producer_start_equals_end_emits_one_item() -> None:
    producer = IntProducer(7, 7)
    producer.open()
    assert drain(producer) == [7]


def test_int_producer_keeps_raising_stop_iteration_after_the_end() -> None:
    producer = IntProducer(1, 2)
    producer.open()
    assert drain(producer) == [1, 2]
    for _ in range(3):
        with pytest.raises(StopIteration):
            producer.next()


def test_int_producer_without_end_counts_forever() -> None:
    producer = IntProducer(5)
    producer.open()
    assert [producer.next() for _ in range(1000)] == list(range(5, 1005))


def test_int_producer_default_starts_at_zero() -> None:
    producer = IntProducer(end_value=2)
    producer.open()
    assert drain(producer) == [0, 1, 2]


def test_int_producer_restarts_on_open() -> None:
    producer = IntProducer(0, 2)
    producer.open()
    assert drain(producer) == [0, 1, 2]
    producer.close()
    producer.open()
    assert drain(producer) == [0, 1, 2]


def test_int_producer_sleeps_between_items_only(sleeps: list[float]) -> None:
    producer = IntProducer(0, 3, 0.25)
    producer.open()
    assert producer.next() == 0
    assert sleeps == []  # no sleep before the first item
    assert drain(producer) == [1, 2, 3]
    assert sleeps == [0.25, 0.25, 0.25]  # one per gap, none after the last


def test_int_producer_fps_overrides_wait(sleeps: list[float]) -> None:
    producer = IntProducer(0, 2, wait_time_in_seconds=5, fps=4)
    assert producer.interval == 0.25
    producer.open()
    assert drain(producer) == [0, 1, 2]
    assert sleeps == [0.25, 0.25]


def test_int_producer_non_positive_fps_is_ignored(sleeps: list[float]) -> None:
    producer = IntProducer(0, 2, wait_time_in_seconds=0.5, fps=0)
    producer.open()
    drain(producer)
    assert sleeps == [0.5, 0.5]


def test_int_producer_does_not_sleep_without_wait(sleeps: list[float]) -> None:
    producer = IntProducer(0, 5)
    producer.open()
    assert drain(producer) == [0, 1, 2, 3, 4, 5]
    assert sleeps == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start_value": "0"}, r"IntProducer 'bad': start_value must be an int"),
        ({"start_value": 1.5}, r"start_value must be an int, got 1.5"),
        ({"start_value": True}, r"start_value must be an int"),
        ({"end_value": 2.0}, r"end_value must be an int"),
        ({"start_value": 5, "end_value": 4}, r"end_value \(4\) must be >= start_value \(5\)"),
        ({"wait_time_in_seconds": -1}, r"wait_time_in_seconds must be a finite number >= 0"),
        ({"wait_time_in_seconds": "1"}, r"wait_time_in_seconds must be a number"),
        ({"fps": None}, r"fps must be a number"),
    ],
)
def test_int_producer_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(NodeConfigError, match=match):
        IntProducer(**kwargs, name="bad")  # type: ignore[arg-type]


def test_int_producer_pickles_with_its_configuration() -> None:
    producer = IntProducer(3, 9, 0.5, fps=10, name="counter")
    copy = pickle.loads(pickle.dumps(producer))
    assert (copy.start_value, copy.end_value, copy.wait_time_in_seconds, copy.fps) == (3, 9, 0.5, 10)
    assert copy.name == "counter"
    copy.open()
    assert copy.next() == 3


def test_int_producer_is_not_callable_with_parents() -> None:
    with pytest.raises(NodeConfigError, match="takes no parents"):
        IntProducer(0, 1)(IntProducer(0, 1))


# -- IterableProducer ---------------------------------------------------------


def test_iterable_producer_emits_every_item_then_stops() -> None:
    producer = IterableProducer(["a", {"b": 1}, 3])
    producer.open()
    assert drain(producer) == ["a", {"b": 1}, 3]
    with pytest.raises(StopIteration):
        producer.next()


def test_iterable_producer_empty_iterable_stops_at_once() -> None:
    producer = IterableProducer(())
    producer.open()
    with pytest.raises(StopIteration):
        producer.next()


def test_iterable_producer_is_rerunnable_after_close_and_open() -> None:
    producer = IterableProducer(range(3))
    producer.open()
    assert drain(producer) == [0, 1, 2]
    producer.close()
    producer.open()
    assert drain(producer) == [0, 1, 2]


def test_iterable_producer_next_before_open_says_what_to_do() -> None:
    producer = IterableProducer([1], name="src")
    with pytest.raises(RuntimeError, match=r"IterableProducer 'src': next\(\) was called before open\(\)"):
        producer.next()


def test_iterable_producer_rejects_non_iterable() -> None:
    with pytest.raises(NodeConfigError, match=r"IterableProducer 'src': iterable must be an iterable.*got 42"):
        IterableProducer(42, name="src")  # type: ignore[arg-type]


def test_iterable_producer_pickles_with_its_configuration() -> None:
    producer = IterableProducer([1, 2, 3], name="src")
    copy = pickle.loads(pickle.dumps(producer))
    assert copy.iterable == [1, 2, 3]
    assert copy.name == "src"
    copy.open()
    assert drain(copy) == [1, 2, 3]


def test_iterable_producer_pickles_while_open_and_restarts_in_the_copy() -> None:
    producer = IterableProducer([1, 2, 3])
    producer.open()
    assert producer.next() == 1
    copy = pickle.loads(pickle.dumps(producer))
    copy.open()
    assert drain(copy) == [1, 2, 3]


def test_len_hints_for_progress_bars() -> None:
    assert IntProducer(0, 9).len_hint == 10
    assert IntProducer(5).len_hint is None
    assert IterableProducer([1, 2, 3]).len_hint == 3
    assert IterableProducer(x for x in range(3)).len_hint is None  # type: ignore[arg-type]
