"""The main job, run by ``make demo``: a real video pipeline, every node in its own process.

    VideoFileReader -> FrameIndexSplitter -> ResizeImageTransformer
        -> MotionDetector (nb_tasks=2) -> KalmanFilterBoundingBoxTracker
        -> TrackerAnnotator -> VideofileWriter

A synthetic clip (moving shapes, 300 frames, 640x360) is generated with OpenCV the
first time; the motion boxes go through a SORT tracker, so each moving shape keeps
its track id from frame to frame, and the annotated video (boxes with their ids)
goes to ``out/demo.mp4``.  While it runs a live table shows each node's progress;
at the end the bottleneck report names the node that limits the throughput.
Everything is offline and needs only the ``video`` extra.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import asyncflow
from asyncflow.consumers import VideofileWriter
from asyncflow.core import Flow
from asyncflow.processors import (
    FrameIndexSplitter,
    KalmanFilterBoundingBoxTracker,
    MotionDetector,
    ResizeImageTransformer,
    TrackerAnnotator,
)
from asyncflow.producers import VideoFileReader

OUT = Path("out")


def build(clip: Path, output: Path, size: tuple[int, int] = (480, 270)) -> Flow:
    """The demo's flow (a function, so spawned children do not rebuild it on import)."""
    reader = VideoFileReader(str(clip), name="reader")
    frame = FrameIndexSplitter(name="split")(reader)
    small = ResizeImageTransformer(size=size, name="resize")(frame)
    boxes = MotionDetector(nb_tasks=2, name="motion")(small)
    tracks = KalmanFilterBoundingBoxTracker(max_age=15, min_hits=3, name="track")(boxes)
    annotated = TrackerAnnotator(box_color=(255, 0, 255), name="annotate")(small, tracks, reader)
    writer = VideofileWriter(str(output), fps=30, name="writer")(annotated)
    return Flow([reader], [writer])


def demo_flow() -> Flow:
    """The flow with its default paths, for ``asyncflow graph examples.video_demo:demo_flow``."""
    return build(OUT / "clip-300.mp4", OUT / "demo.mp4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames in the generated clip")
    parser.add_argument("--out", type=Path, default=OUT / "demo.mp4", help="where to write the annotated video")
    args = parser.parse_args()

    from asyncflow.video import make_clip

    clip = OUT / f"clip-{args.frames}.mp4"
    if not clip.exists():
        OUT.mkdir(exist_ok=True)
        print(f"generating {clip} ({args.frames} frames, 640x360)")
        make_clip(clip, nb_frames=args.frames, size=(640, 360))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    flow = build(clip, args.out)
    started = time.perf_counter()
    asyncflow.run(flow, progress=True, report=True)
    elapsed = time.perf_counter() - started
    frames = flow.stats()["writer"].processed
    print(f"{frames} frames in {elapsed:.1f} s ({frames / elapsed:.0f} frames/s, start-up included)")
    print(f"annotated video: {args.out.resolve()}")


if __name__ == "__main__":
    main()
