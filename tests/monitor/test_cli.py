"""The asyncflow command: ``run`` and ``graph`` through a subprocess, target loading in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asyncflow.cli import TargetError, load_flow
from asyncflow.core import Flow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "tests.monitor.sample_flow"
SCRIPT = Path(sys.executable).with_name("asyncflow")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m asyncflow ARGS`` from the repository root (so ``tests`` imports)."""
    return subprocess.run(
        [sys.executable, "-m", "asyncflow", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_run_prints_the_summary_and_names_the_bottleneck() -> None:
    result = cli("run", f"{SAMPLE}:make_flow")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("asyncflow: finished in ")  # stderr is a pipe: no live table
    assert "40 of 40 items consumed" in lines[0]
    assert "asyncflow bottleneck report" in result.stderr
    assert "Bottleneck: slow is busy" in result.stderr
    assert result.stdout == ""


def test_run_without_report_or_progress_prints_nothing() -> None:
    result = cli("run", f"{SAMPLE}:make_flow", "--no-progress", "--no-report")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


def test_a_failing_flow_exits_1_with_the_message_and_no_local_traceback() -> None:
    result = cli("run", f"{SAMPLE}:make_failing_flow", "--no-report")
    assert result.returncode == 1
    assert "asyncflow: error: NodeFailedError: FailAt 'fail'" in result.stderr
    assert "ValueError: boom at 3" in result.stderr
    assert "asyncflow/cli.py" not in result.stderr  # the parent's traceback only with --debug
    assert "bottleneck report" not in result.stderr


@pytest.mark.skipif(not SCRIPT.exists(), reason="the asyncflow script is not installed next to this Python")
def test_graph_prints_dot_by_default_and_writes_mermaid_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "graph", f"{SAMPLE}:make_diamond"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("digraph asyncflow {")
    assert 'n2 -> n3 [label="0"];' in result.stdout

    out = tmp_path / "graph.mmd"
    result = cli("graph", f"{SAMPLE}:make_diamond", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("flowchart TD")
    assert f"wrote {out}" in result.stderr


def test_bad_targets_exit_2_with_a_message() -> None:
    for target, message in [
        (f"{SAMPLE}:nope", "has no attribute 'nope'"),
        (f"{SAMPLE}:not_a_flow", "is a int, not a Flow"),
        ("tests.monitor.no_such_module:flow", "cannot import 'tests.monitor.no_such_module'"),
    ]:
        result = cli("graph", target)
        assert result.returncode == 2, (target, result.stderr)
        assert message in result.stderr, (target, result.stderr)
        assert "Traceback" not in result.stderr


def wait_for(process: subprocess.Popen[str], path: Path, what: str, seconds: float = 30) -> None:
    """Wait until the Recorder's file at ``path`` holds ``what`` (the flow is running)."""
    deadline = time.monotonic() + seconds
    while what not in (path.read_text() if path.exists() else ""):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"the flow did not write {what!r} in {seconds} s"
        time.sleep(0.05)


def test_first_ctrl_c_stops_gracefully_second_one_exits_130(tmp_path: Path) -> None:
    def start(factory: str, record: Path, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "asyncflow", "run", f"{SAMPLE}:{factory}", *extra],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "ASYNCFLOW_TEST_RECORD": str(record), "COLUMNS": "120"},
        )

    graceful = start("make_endless_flow", tmp_path / "graceful.jsonl")
    stuck = start("make_stuck_flow", tmp_path / "stuck.jsonl", "--no-report")
    try:
        wait_for(graceful, tmp_path / "graceful.jsonl", '"item": 3')
        wait_for(stuck, tmp_path / "stuck.jsonl", '"item": 0')  # items 1.. are queued behind the 1 s node
        graceful.send_signal(signal.SIGINT)
        stuck.send_signal(signal.SIGINT)  # starts draining items that take 1 s each
        _, err = graceful.communicate(timeout=30)
        assert graceful.returncode == 0, err
        assert err.startswith("asyncflow: stopped in "), err
        assert "bottleneck report" in err
        assert stuck.poll() is None, "the stuck flow should still be draining"
        stuck.send_signal(signal.SIGINT)
        _, err = stuck.communicate(timeout=30)
        assert stuck.returncode == 130, err
        assert "asyncflow: interrupted" in err
    finally:
        for process in (graceful, stuck):
            if process.poll() is None:
                process.kill()
                process.communicate()


def test_load_flow_takes_a_flow_or_a_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_flow adds the script's folder
    monkeypatch.setitem(sys.modules, "my_pipeline", None)
    del sys.modules["my_pipeline"]  # ... and monkeypatch takes the imported module out again
    assert isinstance(load_flow(f"{SAMPLE}:make_diamond"), Flow)
    script = tmp_path / "my_pipeline.py"
    script.write_text(
        "from asyncflow.consumers import VoidConsumer\n"
        "from asyncflow.core import Flow\n"
        "from tests.helpers import CountProducer\n"
        "def make_flow():\n"
        "    a = CountProducer(1, name='a')\n"
        "    return Flow([a], [VoidConsumer(name='b')(a)])\n"
    )
    flow = load_flow(str(script))  # no ":attr": make_flow
    assert [n.name for n in flow.nodes] == ["a", "b"]
    with pytest.raises(TargetError, match=r"returned NoneType, not a Flow"):
        load_flow(f"{SAMPLE}:returns_nothing")
    with pytest.raises(TargetError, match="defines neither 'flow' nor 'make_flow'"):
        load_flow("tests.helpers")
    with pytest.raises(TargetError, match="no such file"):
        load_flow(str(tmp_path / "missing.py"))
