"""utils.system, utils.downloader, utils.generic_utils, core.bottlenecks and other small videoflow modules."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from asyncflow.compat.videoflow._unavailable import NotAvailableError
from asyncflow.compat.videoflow.consumers import VoidConsumer
from asyncflow.compat.videoflow.core import Flow, bottlenecks, constants
from asyncflow.compat.videoflow.core.node import ConsumerNode, Leaf, ProcessorNode
from asyncflow.compat.videoflow.core.processor import Processor
from asyncflow.compat.videoflow.processors import IdentityProcessor
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.compat.videoflow.utils import downloader, generic_utils, system

# -- utils.system -----------------------------------------------------------------------------


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Put an ``nvidia-smi`` that lists ``n`` GPUs first on PATH (``n=None``: no nvidia-smi at all)."""

    def install(n: int | None) -> None:
        folder = tmp_path / f"bin{n}"
        folder.mkdir()
        if n is not None:
            smi = folder / "nvidia-smi"
            smi.write_text("#!/bin/sh\n" + "".join(f"echo {i}\n" for i in range(n)))
            smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", str(folder))

    return install


def test_the_system_gpus_are_what_nvidia_smi_lists(fake_smi: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # not read for the system's GPUs
    fake_smi(3)
    assert system.get_number_of_gpus() == 3
    assert system.get_system_gpus() == {0, 1, 2}
    fake_smi(None)
    assert system.get_number_of_gpus() == 0 and system.get_system_gpus() == set()


def test_cuda_visible_devices_restricts_them_as_videoflow_did(fake_smi: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_smi(4)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert system.get_gpus_available_to_process() == [0, 1, 2, 3]
    for visible, expected in [("", []), ("2", [2]), ("3, 1", [1, 3]), ("x, 1, 7, -1", [1]), ("GPU-1234", [])]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert system.get_gpus_available_to_process() == expected, visible


def test_the_helpers_see_each_other_s_monkeypatches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "get_number_of_gpus", lambda: 2)
    assert system.get_system_gpus() == {0, 1}
    monkeypatch.setattr(system, "get_system_gpus", lambda: {0, 5})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    assert system.get_gpus_available_to_process() == [5]


def test_flow_gives_gpu_tasks_the_gpus_utils_system_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "get_gpus_available_to_process", lambda: [0, 1, 3])
    a = IntProducer(0, 3)
    gpu = IdentityProcessor(device_type="gpu")(a)
    sink = VoidConsumer()(gpu)
    assert Flow([a], [sink]).core_flow.options.gpus == ("0", "1", "3")
    assert Flow([a], [sink], flow_options={"gpus": [7]}).core_flow.options.gpus == ("7",), "flow_options win"
    b = IntProducer(0, 3)
    cpu_only = VoidConsumer()(IdentityProcessor()(b))
    assert Flow([b], [cpu_only]).core_flow.options.gpus is None, "no GPU node: asyncflow's own default"


# -- utils.downloader ------------------------------------------------------------------------------


def test_get_file_raises_saying_asyncflow_downloads_nothing() -> None:
    with pytest.raises(downloader.DownloadNotAvailable, match="downloads nothing") as info:
        downloader.get_file("labels_coco.pbtxt", "https://example.com/labels_coco.pbtxt")
    assert isinstance(info.value, NotImplementedError) and isinstance(info.value, NotAvailableError)
    assert "OnnxDetector" in str(info.value) and "class_labels_path" in str(info.value)


def test_validate_file_checks_sha256_and_md5(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 1000)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    assert downloader.validate_file(path, sha256)
    assert downloader.validate_file(path, md5)
    assert downloader.validate_file(path, sha256, algorithm="sha256")
    assert not downloader.validate_file(path, "0" * 64)


# -- utils.generic_utils ---------------------------------------------------------------------------


def test_progbar_draws_steps_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    bar = generic_utils.Progbar(10, width=10, interval=0)
    bar.update(5, [("loss", 1.0)])
    bar.add(5, [("loss", 3.0)])
    out = capsys.readouterr().out
    assert " 5/10 [====>.....]" in out
    assert "10/10 [==========]" in out and "loss: 2.0000" in out and out.endswith("\n")
    quiet = generic_utils.Progbar(4, verbose=2, stateful_metrics=["acc"])
    quiet.update(2, [("acc", 0.5)])
    assert capsys.readouterr().out == ""
    quiet.update(4, [("acc", 0.75)])
    assert "acc: 0.7500" in capsys.readouterr().out
    generic_utils.Progbar(None).update(3)
    assert "3/Unknown" in capsys.readouterr().out


def test_delayed_keyboard_interrupt_holds_ctrl_c_until_the_block_ends() -> None:
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt), generic_utils.DelayedKeyboardInterrupt():
        os.kill(os.getpid(), signal.SIGINT)
        reached_the_end = True
    assert reached_the_end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- core.bottlenecks, core.processor, core.constants, core.node ---------------------------------------


def test_metric_and_accountant_compute_as_videoflow_s() -> None:
    metric = bottlenecks.Metric("proctime")
    for value in (100.0, 1.0, 2.0, 3.0):  # the first value only arms the metric, as in videoflow
        metric.update_stats(value)
    assert metric.name == "proctime" and metric.mean == pytest.approx(2.0)
    assert metric.variance == pytest.approx(2 / 3)
    accountant = bottlenecks.Accountant(2)
    for node in (0, 1):
        for value in (9.0, node + 1.0, node + 3.0):
            accountant.update_proctime(node, value)
            accountant.update_actualproctime(node, 2 * value)
    assert accountant.get_proctime() == [2.0, 3.0]
    assert accountant.get_actual_proctime() == [4.0, 6.0]
    with pytest.raises(ValueError, match="not in node accountant"):
        bottlenecks.Accountant(1).get_proctime()
    assert bottlenecks.MetricMessage("n", "proctime", 1.0).logtype == "proctime"


def test_metric_matches_videoflow_when_installed() -> None:
    theirs = pytest.importorskip("videoflow.core.bottlenecks")
    ours, reference = bottlenecks.Metric(), theirs.Metric()
    for value in (3.0, 1.5, 8.0, 2.25, 4.0):
        ours.update_stats(value)
        reference.update_stats(value)
    assert (ours.mean, ours.variance) == pytest.approx((reference.mean, reference.variance))


def test_the_timing_consumer_raises_pointing_at_asyncflow_s_report() -> None:
    with pytest.raises(NotAvailableError, match="bottleneck_report"):
        bottlenecks.MetadataConsumer()
    with pytest.raises(NotAvailableError, match=r"flow\.stats\(\)"):
        bottlenecks.MetricsLogger("./logs")
    assert issubclass(bottlenecks.MetadataConsumer, ConsumerNode)


def test_small_core_names() -> None:
    with pytest.raises(NotImplementedError, match="process"):
        Processor().process(1)
    assert not issubclass(Processor, ProcessorNode)
    assert constants.LOGGING_LEVEL == logging.INFO
    assert constants.STOP_SIGNAL == "alalsl;'sdlfj2389jdalskmghsaiaw98y8asdf;askljoa8y;dsf;lkasdb"
    assert Leaf is ConsumerNode


def test_webhook_consumer_takes_videoflow_s_arguments() -> None:
    pytest.importorskip("httpx")
    from asyncflow.compat.videoflow.consumers.basic import WebhookConsumer

    node = WebhookConsumer("http://localhost:9/hook")
    assert (node.host, node.url, node.method) == ("http://localhost:9/hook", "http://localhost:9/hook", "post")
    assert WebhookConsumer("https://example.com", "POST", timeout=2.0).timeout == 2.0
    with pytest.raises(ValueError, match="method must be 'post'"):
        WebhookConsumer("http://localhost:9/hook", method="get")
