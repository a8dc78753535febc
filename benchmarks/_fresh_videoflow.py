"""videoflow 0.2.10's side of ``benchmarks.freshness``: the same camera, processor and consumer as videoflow nodes.

Imported only in the child interpreter that runs videoflow (``python -m
benchmarks.freshness --child videoflow S1 ...``), so that importing videoflow (and
OpenCV, which its packages import eagerly) never touches the benchmark's own
process nor asyncflow's tasks.  videoflow 0.2.10 runs only with the ``fork`` start
method (see ``benchmarks._peer_videoflow``), so ``run`` forks.

videoflow's ``REALTIME`` engine: every channel is a ``multiprocessing.Queue(1)`` and
a publisher that finds it full drops the *new* message; a ``ProcessorNode`` with
``nb_tasks > 1`` runs a receiver, ``nb_tasks`` workers and an output task that puts
results back in the workers' order.  Its flow also appends a ``MetadataConsumer``
(writes ``nodes_proctime.log`` in the working directory: the child runs in a scratch one).
"""

from __future__ import annotations

import multiprocessing
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoflow.core import Flow  # type: ignore[import-untyped]
from videoflow.core.constants import REALTIME  # type: ignore[import-untyped]
from videoflow.core.node import ConsumerNode, ProcessorNode, ProducerNode  # type: ignore[import-untyped]

from .freshness import _CameraLogic, _ConsumerLogic, _warm_up

if TYPE_CHECKING:
    from .freshness import Scenario

__all__ = ["VfAgeConsumer", "VfCameraProducer", "VfSleepProcessor", "run"]


class VfCameraProducer(_CameraLogic, ProducerNode):  # type: ignore[misc]
    """videoflow camera: ``frames`` items at ``fps`` on a fixed schedule (see ``benchmarks.freshness``)."""

    def __init__(self, frames: int, fps: float, out_path: str) -> None:
        super().__init__()
        self.frames = frames
        self.fps = fps
        self.out_path = out_path

    def open(self) -> None:
        self._camera_reset()

    def next(self) -> Any:
        return self._camera_next()

    def close(self) -> None:
        self._camera_close()


class VfSleepProcessor(ProcessorNode):  # type: ignore[misc]
    """videoflow processor: sleeps ``work_s`` a frame (0: identity) and passes the item on."""

    def __init__(self, work_s: float, nb_tasks: int = 1) -> None:
        super().__init__(nb_tasks=nb_tasks)
        self.work_s = work_s

    def open(self) -> None:
        _warm_up()

    def process(self, item: Any) -> Any:
        if self.work_s:
            time.sleep(self.work_s)
        return item


class VfAgeConsumer(_ConsumerLogic, ConsumerNode):  # type: ignore[misc]
    """videoflow consumer: records each item's age and index, sleeps ``work_s``; writes to ``out_path`` at close()."""

    def __init__(self, out_path: str, work_s: float = 0.0) -> None:
        super().__init__()
        self.out_path = out_path
        self.work_s = work_s

    def open(self) -> None:
        self._consumer_reset()

    def consume(self, item: Any) -> None:
        self._consume(item)

    def close(self) -> None:
        self._consumer_close()


def run(sc: Scenario, frames: int, fps: float, folder: Path) -> dict[str, Any]:
    """Run scenario ``sc`` on videoflow's ``REALTIME`` flow; wall-clock stamps of the run (the nodes write the rest)."""
    multiprocessing.set_start_method("fork", force=True)
    cam = VfCameraProducer(frames, fps, str(folder / "camera.json"))
    det = VfSleepProcessor(sc.processor_s, nb_tasks=sc.nb_tasks)(cam)
    sink = VfAgeConsumer(str(folder / "consumer.json"), sc.consumer_s)(det)
    flow = Flow([cam], [sink], flow_type=REALTIME)
    t_start = time.time()
    flow.run()
    flow.join()
    t_end = time.time()
    return {"t_start_wall": t_start, "t_end_wall": t_end, "engine_dropped": None,
            "version": metadata.version("videoflow")}
