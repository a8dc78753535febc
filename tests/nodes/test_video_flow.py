"""End-to-end: a video pipeline through the real engine, every node in its own process."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from asyncflow.consumers import VideofileWriter
from asyncflow.core import Flow
from asyncflow.processors import BoundingBoxAnnotator, FrameIndexSplitter, MotionDetector, ResizeImageTransformer
from asyncflow.producers import VideoFileReader
from asyncflow.video import clip_frame, make_clip

CLIP_SIZE = (320, 180)  # (width, height)
OUT_SIZE = (160, 96)


def read_all(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


async def test_video_pipeline_writes_every_frame_resized_and_annotated(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", nb_frames=40, size=CLIP_SIZE)
    out = tmp_path / "out.mp4"

    reader = VideoFileReader(clip)
    frame = FrameIndexSplitter()(reader)
    small = ResizeImageTransformer(size=OUT_SIZE)(frame)
    boxes = MotionDetector(nb_tasks=2)(small)
    annotated = BoundingBoxAnnotator(class_labels={0: "motion"}, box_color=(255, 0, 255))(small, boxes, reader)
    writer = VideofileWriter(out, fps=30)(annotated)
    await Flow([reader], [writer]).run()

    frames = read_all(out)
    assert len(frames) == 40
    assert all(f.shape == (OUT_SIZE[1], OUT_SIZE[0], 3) for f in frames)
    expected = [cv2.resize(clip_frame(i, CLIP_SIZE), OUT_SIZE) for i in range(40)]
    changed = []
    for index, got in enumerate(frames):
        errors = [float(np.abs(got.astype(np.int16) - want).mean()) for want in expected]
        # Each frame is its own, in order (not a reused buffer's later content): closest to its source frame.
        assert int(np.argmin(errors)) == index, errors
        difference = np.abs(got.astype(np.int16) - expected[index]).max(axis=2)
        changed.append(float((difference > 80).mean()))
    # Annotations (the frame number; boxes once each worker has a previous frame) change pixels in every frame,
    # boxes many more of them.
    assert all(fraction > 0.001 for fraction in changed)
    assert np.median(changed[4:]) > 2 * max(changed[:2])
