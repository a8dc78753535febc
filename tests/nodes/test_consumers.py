"""Tests for asyncflow.consumers.basic: command line, void and file appender consumers, in-process."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from asyncflow.consumers import CommandlineConsumer, FileAppenderConsumer, VoidConsumer
from asyncflow.core.errors import NodeConfigError


class Unserialisable:
    """An object json cannot encode."""


# -- CommandlineConsumer ------------------------------------------------------


def test_commandline_prints_each_item_on_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    node = CommandlineConsumer()
    node.open()
    for item in (1, "two", [3]):
        node.consume(item)
    node.close()
    assert capsys.readouterr().out == "1\ntwo\n[3]\n"


def test_commandline_uses_sep_and_end(capsys: pytest.CaptureFixture[str]) -> None:
    node = CommandlineConsumer("-", ";")
    node.consume(1, 2, 3)
    node.consume("x")
    assert capsys.readouterr().out == "1-2-3;x;"


def test_commandline_flushes_each_item(monkeypatch: pytest.MonkeyPatch) -> None:
    flushes: list[bool] = []
    real_print = print

    def spy(*args: object, **kwargs: object) -> None:
        flushes.append(bool(kwargs.get("flush")))
        real_print(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.print", spy)
    CommandlineConsumer().consume("x")
    assert flushes == [True]


@pytest.mark.parametrize(("kwargs", "match"), [({"sep": 1}, "sep must be a str"), ({"end": None}, "end must")])
def test_commandline_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(NodeConfigError, match=rf"CommandlineConsumer 'out': {match}"):
        CommandlineConsumer(**kwargs, name="out")  # type: ignore[arg-type]


def test_commandline_pickles_with_its_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    copy = pickle.loads(pickle.dumps(CommandlineConsumer(", ", "|", name="out", on_error="skip")))
    assert (copy.sep, copy.end, copy.name, copy.on_error) == (", ", "|", "out", "skip")
    copy.consume("a", "b")
    assert capsys.readouterr().out == "a, b|"


# -- VoidConsumer -------------------------------------------------------------


def test_void_consumer_does_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    node = VoidConsumer()
    node.open()
    node.consume(1)
    node.consume(1, 2)
    node.close()
    assert capsys.readouterr() == ("", "")


def test_void_consumer_pickles() -> None:
    copy = pickle.loads(pickle.dumps(VoidConsumer(name="sink")))
    assert type(copy) is VoidConsumer
    assert copy.name == "sink"


# -- FileAppenderConsumer -----------------------------------------------------


def read_lines(path: Path) -> list[object]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_appender_writes_one_json_line_per_item(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = FileAppenderConsumer(path)
    node.open()
    for item in (1, "é", {"a": [1, 2]}, None):
        node.consume(item)
    node.close()
    assert read_lines(path) == [1, "é", {"a": [1, 2]}, None]


def test_file_appender_several_inputs_make_a_json_list(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = FileAppenderConsumer(str(path))
    node.open()
    node.consume(1, "b", (3, 4))
    node.close()
    assert read_lines(path) == [[1, "b", [3, 4]]]


def test_file_appender_flushes_each_item(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = FileAppenderConsumer(path)
    node.open()
    try:
        node.consume({"n": 1})
        assert read_lines(path) == [{"n": 1}]  # visible before close()
    finally:
        node.close()


def test_file_appender_appends_to_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('"old"\n', encoding="utf-8")
    node = FileAppenderConsumer(path)
    for run in ([1, 2], [3]):
        node.open()
        for item in run:
            node.consume(item)
        node.close()
    assert read_lines(path) == ["old", 1, 2, 3]


def test_file_appender_close_is_idempotent_and_closes_the_file(tmp_path: Path) -> None:
    node = FileAppenderConsumer(tmp_path / "out.jsonl", name="log")
    node.open()
    node.close()
    node.close()
    with pytest.raises(RuntimeError, match=r"FileAppenderConsumer 'log': consume\(\) was called before open"):
        node.consume(1)


def test_file_appender_unserialisable_item_raises_type_error_naming_node(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = FileAppenderConsumer(path, name="log")
    node.open()
    try:
        node.consume(1)
        with pytest.raises(TypeError, match=r"FileAppenderConsumer 'log' cannot write Unserialisable item"):
            node.consume(Unserialisable())
        node.consume(2)
    finally:
        node.close()
    assert read_lines(path) == [1, 2]  # nothing half-written


@pytest.mark.parametrize(("path", "match"), [(42, "path must be a str or a path"), ("", "path must not be empty")])
def test_file_appender_rejects_bad_path(path: object, match: str) -> None:
    with pytest.raises(NodeConfigError, match=rf"FileAppenderConsumer 'log': {match}"):
        FileAppenderConsumer(path, name="log")  # type: ignore[arg-type]


def test_file_appender_pickles_with_its_configuration(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = FileAppenderConsumer(path, name="log", on_error="skip")
    copy = pickle.loads(pickle.dumps(node))
    assert (copy.path, copy.name, copy.on_error) == (str(path), "log", "skip")
    copy.open()
    copy.consume("x")
    copy.close()
    assert read_lines(path) == ["x"]


def test_file_appender_pickles_while_open(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = FileAppenderConsumer(path)
    node.open()
    try:
        copy = pickle.loads(pickle.dumps(node))
    finally:
        node.close()
    copy.open()
    copy.consume(5)
    copy.close()
    assert read_lines(path) == [5]
