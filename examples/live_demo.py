"""Live video: a paced camera feeding a detector slower than it, every node in its own process, in REALTIME.

    SyntheticCamera (30 fps, 10 s) -> FrameIndexSplitter -> SlowMotionDetector (motion + 60 ms sleep)
        -> BoundingBoxAnnotator -> VideofileWriter (out/live.mp4)

The camera films the synthetic clip (moving shapes, 640x360) on its own clock, as
a real camera does: it never waits for the pipeline.  The detector takes about
90 ms a frame (motion detection plus a 60 ms sleep that stands in for a neural
network's inference; there is no network here), so it cannot keep up with 30
frames a second: a ``REALTIME`` flow drops the frames it has no time for instead
of letting them queue, and the annotated video (``out/live.mp4``) holds the frames
that made it through.  ``--from-file`` plays a generated clip with
``VideoFileReader(realtime=True)`` instead of the camera.  While it runs a live
table shows each node's progress and drops; at the end the bottleneck report names
the node that limits the throughput.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import asyncflow
from asyncflow.consumers import VideofileWriter
from asyncflow.core import REALTIME, Flow, ProducerNode
from asyncflow.processors import BoundingBoxAnnotator, FrameIndexSplitter, MotionDetector
from asyncflow.producers import SyntheticCamera, VideoFileReader

OUT = Path("out")
FPS = 30.0
SECONDS = 10.0
SIZE = (640, 360)


class SlowMotionDetector(MotionDetector):
    """A stand-in for a neural detector: ``MotionDetector``'s boxes, then a fixed sleep (``delay`` s) per frame.

    No neural network runs here: the sleep only makes the stage as slow as a small
    detector on a CPU would be, slower than the camera's frame period.
    """

    def __init__(self, delay: float = 0.06, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def process(self, im: Any) -> Any:
        """Detect motion in ``im``, then sleep ``delay`` seconds."""
        boxes = super().process(im)
        time.sleep(self.delay)
        return boxes


def build(
    output: Path,
    *,
    seconds: float = SECONDS,
    fps: float = FPS,
    delay: float = 0.06,
    clip: Path | None = None,
) -> Flow:
    """The live flow: the camera (or, given ``clip``, the file played in realtime) through a slow detector."""
    source: ProducerNode
    if clip is None:
        source = SyntheticCamera(nb_frames=round(seconds * fps), fps=fps, size=SIZE, name="camera")
    else:
        source = VideoFileReader(str(clip), realtime=True, name="camera")
    frame = FrameIndexSplitter(name="split")(source)
    boxes = SlowMotionDetector(delay, name=f"motion+{delay * 1000:.0f}ms")(frame)
    annotated = BoundingBoxAnnotator(class_labels={0: "motion"}, box_color=(255, 0, 255), name="annotate")(
        frame, boxes, source
    )
    writer = VideofileWriter(str(output), fps=fps, name="writer")(annotated)
    # log_level INFO: the source's closing summary is an info line when it skipped nothing.
    return Flow([source], [writer], flow_type=REALTIME, flow_options={"log_level": logging.INFO})


def live_flow() -> Flow:
    """The flow with its defaults, for ``asyncflow run examples.live_demo:live_flow``."""
    OUT.mkdir(exist_ok=True)
    return build(OUT / "live.mp4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS, help="how long the camera films")
    parser.add_argument("--fps", type=float, default=FPS, help="the camera's frame rate")
    parser.add_argument("--delay", type=float, default=0.06, help="the detector's extra seconds per frame")
    parser.add_argument("--from-file", action="store_true", help="play a generated clip in realtime instead")
    parser.add_argument("--out", type=Path, default=OUT / "live.mp4", help="where to write the annotated video")
    args = parser.parse_args()
    # The sources log a one-line summary (frames emitted, skipped, lateness) when they close.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncflow.producers.video").setLevel(logging.INFO)

    clip = None
    if args.from_file:
        from asyncflow.video import make_clip

        frames = round(args.seconds * args.fps)
        clip = OUT / f"clip-{frames}-{args.fps:g}fps.mp4"
        if not clip.exists():
            OUT.mkdir(exist_ok=True)
            print(f"generating {clip} ({frames} frames, {SIZE[0]}x{SIZE[1]}, {args.fps:g} fps)")
            make_clip(clip, nb_frames=frames, size=SIZE, fps=args.fps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    flow = build(args.out, seconds=args.seconds, fps=args.fps, delay=args.delay, clip=clip)
    started = time.perf_counter()
    asyncflow.run(flow, progress=True, report=True)
    elapsed = time.perf_counter() - started
    stats = flow.stats()
    filmed, written = stats["camera"].processed, stats["writer"].processed
    print(
        f"the camera emitted {filmed} frames in {elapsed:.1f} s (start-up included); "
        f"{written} reached the writer, the others were dropped on the way"
    )
    print(f"annotated video: {args.out.resolve()}")


if __name__ == "__main__":
    main()
