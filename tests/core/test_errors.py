"""Tests for asyncflow.core.errors and the public import surface (docs/design.md#errors)."""

from __future__ import annotations

import pickle

import pytest

import asyncflow
import asyncflow.core
from asyncflow.core import (
    BATCH,
    REALTIME,
    ConsumerNode,
    Flow,
    FlowError,
    FlowKilledError,
    GraphError,
    NodeConfigError,
    NodeFailedError,
    ProcessorNode,
    ProducerNode,
    WorkerDiedError,
)


def test_contract_names_import_from_core() -> None:
    assert isinstance(Flow, type)
    assert BATCH == "batch" and REALTIME == "realtime"
    assert issubclass(FlowError, Exception)
    for kind in (ProducerNode, ProcessorNode, ConsumerNode):
        assert isinstance(kind, type)


def test_top_level_package_reexports_the_same_objects() -> None:
    assert asyncflow.FlowError is asyncflow.core.FlowError
    assert asyncflow.Flow is asyncflow.core.Flow
    assert asyncflow.BATCH is asyncflow.core.BATCH
    assert asyncflow.REALTIME is asyncflow.core.REALTIME
    assert callable(asyncflow.run)


@pytest.mark.parametrize("module", [asyncflow, asyncflow.core])
def test_all_lists_only_real_names(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(module, name), name


@pytest.mark.parametrize("cls", [NodeFailedError, WorkerDiedError, FlowKilledError])
def test_flow_error_subclasses(cls: type[FlowError]) -> None:
    assert issubclass(cls, FlowError)
    assert cls.__doc__ and "Raised when" in cls.__doc__


def test_flow_error_carries_node_and_task() -> None:
    err = NodeFailedError("b failed", node="b", task="b[1]")
    assert isinstance(err, FlowError)
    assert (err.node, err.task, str(err)) == ("b", "b[1]", "b failed")
    assert FlowError("engine").node is None


def test_worker_died_error_carries_exit_code() -> None:
    err = WorkerDiedError("gone", node="b", task="b", exitcode=-9)
    assert err.exitcode == -9 and err.node == "b"


def test_flow_killed_error_names_the_killed_tasks() -> None:
    err = FlowKilledError("killed", killed=("b[0]", "c"))
    assert err.killed == ("b[0]", "c")
    assert err.node == "b[0]"
    assert FlowKilledError("killed").node is None


def test_graph_and_config_errors_are_the_contract_types() -> None:
    assert issubclass(GraphError, ValueError)
    assert issubclass(NodeConfigError, ValueError) and issubclass(NodeConfigError, TypeError)


def test_stop_flow_survives_pickling() -> None:
    assert pickle.loads(pickle.dumps(asyncflow.STOP_FLOW)) is asyncflow.STOP_FLOW
