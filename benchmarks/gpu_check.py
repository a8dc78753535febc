"""GPU check: an ONNX detector on ``device_type="gpu"``, ``nb_tasks=2``: each task's provider and device, frames/s.

    python -m benchmarks.gpu_check [--model PATH.onnx] [--frames 256] [--tasks 2] [--size 640]
                                   [--max-batch 16] [--width 1280 --height 720]

The flow is

    frames (synthetic, --width x --height) -> OnnxDetector(device_type="gpu", nb_tasks=--tasks) -> results

With ``--model`` it runs that model (a YOLOv8/YOLO11 detection export); without,
it builds a tiny stand-in with ``onnx.helper`` (needs the ``onnx`` package, in the
``test`` extra): the Ultralytics layout, ``[batch, 3, size, size]`` in and
``[batch, 84, (size/8)^2]`` out, three strided convolutions and a 1x1 head so that
the device has real work, random weights (seeded), a dynamic batch axis.

Each task logs the execution provider and device its session got (the engine
gives each GPU task one device through ``CUDA_VISIBLE_DEVICES``; a task with none
left, or an onnxruntime without CUDA, falls back to the CPU and says so); the
script collects those lines and prints one per task, then frames/s: for the whole
run (start-up included), for the stream (from the first result to the last), and
per task (frames / seconds inside the node).  It runs anywhere: without a GPU, or
with plain ``onnxruntime`` instead of ``onnxruntime-gpu``, every task falls back to
the CPU and the script says so.  Exit status 0 when the flow ran, whatever device
it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import Flow, ProducerNode
from asyncflow.engine.devices import available_gpus
from asyncflow.processors import OnnxDetector

DETECTOR = "detector"


class SyntheticFrames(ProducerNode):
    """``count`` BGR frames of moving colored rectangles (made in ``open()``: only the settings travel)."""

    def __init__(self, count: int, width: int, height: int) -> None:
        super().__init__(name="frames")
        self.count, self.width, self.height = count, width, height

    def open(self) -> None:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 60, (self.height, self.width, 3), dtype=np.uint8)
        self._frames = []
        for i in range(8):
            frame = base.copy()
            x, y = (40 + 60 * i) % (self.width - 120), (30 + 25 * i) % (self.height - 90)
            frame[y : y + 90, x : x + 120] = (40 * i % 256, 200, 255 - 30 * i)
            self._frames.append(frame)
        self._index = 0

    def next(self) -> np.ndarray:
        if self._index >= self.count:
            raise StopIteration
        frame = self._frames[self._index % len(self._frames)]
        self._index += 1
        return frame


def build_tiny_model(path: Path, size: int) -> Path:
    """A small YOLO-layout detection model: [batch, 3, size, size] -> [batch, 84, (size / 8) ** 2]."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ModuleNotFoundError:
        raise SystemExit(
            "building the stand-in model needs the onnx package (pip install onnx, or the test extra); "
            "or give a model with --model PATH.onnx"
        ) from None
    if size % 8:
        raise SystemExit(f"--size must be a multiple of 8, got {size}")
    rng = np.random.default_rng(0)
    cells = size // 8
    count = cells * cells
    channels = [3, 16, 32, 64]
    initializers = []
    nodes = []
    current = "images"
    for k in range(3):
        weight = (rng.standard_normal((channels[k + 1], channels[k], 3, 3)) * 0.2).astype(np.float32)
        initializers.append(numpy_helper.from_array(weight, f"w{k}"))
        nodes.append(helper.make_node("Conv", [current, f"w{k}"], [f"c{k}"], strides=[2, 2], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{k}"], [f"r{k}"]))
        current = f"r{k}"
    head = (rng.standard_normal((80, channels[-1], 1, 1)) * 0.15).astype(np.float32)
    bias = np.full(80, -5.0, np.float32)  # most scores low: a few candidates per frame, as a real model gives
    ys, xs = np.mgrid[0:cells, 0:cells].reshape(2, -1).astype(np.float32)
    boxes = np.stack([xs * 8 + 4, ys * 8 + 4, np.full(count, 48.0, np.float32), np.full(count, 64.0, np.float32)])
    initializers += [
        numpy_helper.from_array(head, "head"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(boxes[None].astype(np.float32), "boxes"),
        numpy_helper.from_array(np.array([0, 80, -1], np.int64), "flat"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
    ]
    nodes += [
        helper.make_node("Conv", [current, "head", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores4d"]),
        helper.make_node("Reshape", ["scores4d", "flat"], ["scores"]),
        helper.make_node("ReduceMean", ["scores"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),  # [batch, 1, N] zeros: the boxes follow the batch
        helper.make_node("Add", ["nothing", "boxes"], ["box_rows"]),
        helper.make_node("Concat", ["box_rows", "scores"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-yolo-layout",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 84, count])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 17)], ir_version=8)
    helper.set_model_props(model, {"task": "detect", "imgsz": f"[{size}, {size}]"})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class Collect(logging.Handler):
    """Keeps the records the detector's tasks send (the parent re-logs them under the same logger)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def run_flow(flow: Flow, sink: ResultsConsumer) -> tuple[list[Any], list[float]]:
    """Run ``flow``; return the results and the time each one arrived."""
    run = asyncio.create_task(flow.run())
    results, arrivals = [], []
    async for item in flow.results(sink):
        results.append(item)
        arrivals.append(time.perf_counter())
    await run
    return results, arrivals


def describe_environment() -> bool:
    """Print what there is to run on; return whether a GPU and onnxruntime's CUDA provider are both there."""
    import onnxruntime

    gpus = available_gpus(None)
    providers = onnxruntime.get_available_providers()
    print(f"onnxruntime {onnxruntime.__version__}, providers: {', '.join(providers)}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    print(f"GPUs the engine can give tasks: {', '.join(gpus) or 'none'}"
          + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""))
    cuda = "CUDAExecutionProvider" in providers
    if not gpus:
        print("no GPU here: every GPU task falls back to the CPU (cpu_fallback=True), as the engine's rules say")
    elif not cuda:
        print("this onnxruntime has no CUDA provider (install onnxruntime-gpu): the tasks fall back to the CPU")
    return bool(gpus) and cuda


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a YOLOv8/YOLO11 detection model exported to ONNX")
    parser.add_argument("--frames", type=int, default=256, help="frames to run (default 256)")
    parser.add_argument("--tasks", type=int, default=2, help="the detector's nb_tasks (default 2)")
    parser.add_argument("--size", type=int, default=640, help="input size of the stand-in model (default 640)")
    parser.add_argument("--max-batch", type=int, default=16, help="frames per session.run (default 16)")
    parser.add_argument("--width", type=int, default=1280, help="frame width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="frame height (default 720)")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    onnx_log = logging.getLogger("asyncflow.processors.vision.onnx")
    onnx_log.setLevel(logging.INFO)
    onnx_log.propagate = False  # printed below, one line per task
    collected = Collect()
    onnx_log.addHandler(collected)

    on_gpu = describe_environment()
    with tempfile.TemporaryDirectory() as scratch:
        if args.model is None:
            model = build_tiny_model(Path(scratch) / "tiny-yolo.onnx", args.size)
            print(f"model: a tiny stand-in built here ({args.size}x{args.size}, 80 classes, dynamic batch)")
        else:
            model = args.model
            print(f"model: {model}")
        source = SyntheticFrames(args.frames, args.width, args.height)
        detector = OnnxDetector(
            model, nb_tasks=args.tasks, device_type="gpu", class_ids=None, max_batch=args.max_batch, name=DETECTOR
        )(source)
        sink = ResultsConsumer(name="results")(detector)
        flow = Flow([source], [sink], flow_options={"log_level": "INFO"})
        print(f"running {args.frames} frames of {args.width}x{args.height} through {DETECTOR} "
              f"(device_type='gpu', nb_tasks={args.tasks}, max_batch={args.max_batch}) ...")
        started = time.perf_counter()
        results, arrivals = asyncio.run(run_flow(flow, sink))
        elapsed = time.perf_counter() - started

    print()
    print("per task (what each task's session runs on):")
    task_line = re.compile(r"^\[(?P<task>\S+)\] (?P<text>.*)$", re.DOTALL)
    said: dict[str, list[str]] = {}
    fell_back = False
    for record in collected.records:
        match = task_line.match(record.getMessage())
        task, text = (match["task"], match["text"]) if match else ("?", record.getMessage())
        fell_back |= "running on the CPU" in text
        said.setdefault(task, []).append(text if record.levelno <= logging.INFO else f"{record.levelname}: {text}")
    for task in sorted(said):
        for text in said[task]:
            print(f"  {task:<12} {text}")
    stats = flow.stats()
    for name in sorted(stats):
        if name.startswith(DETECTOR):
            task = stats[name]
            rate = task.processed / task.busy_seconds if task.busy_seconds else float("nan")
            print(f"  {name:<12} {task.processed} frames, {task.busy_seconds:.2f} s in the node: {rate:.1f} frames/s")

    detections = sum(len(d) for d in results)
    stream = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    print()
    print(f"{len(results)} frames, {detections} boxes in all")
    print(f"frames/s: {len(results) / elapsed:.1f} for the whole run ({elapsed:.2f} s, start-up included), "
          f"{(len(arrivals) - 1) / stream:.1f} over the stream (first result to last, {stream:.2f} s)")
    if not on_gpu or fell_back:
        print("ran on the CPU (fallback): no GPU, or no CUDA provider, for these tasks")
    if len(results) != args.frames:
        print(f"expected {args.frames} results, got {len(results)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
