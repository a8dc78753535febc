"""Tests for asyncflow.consumers.video: VideofileWriter writes frames that VideoFileReader reads back, in-process."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from asyncflow.consumers import VideofileWriter
from asyncflow.core.errors import NodeConfigError
from asyncflow.producers import VideoFileReader
from asyncflow.video import clip_frame

SIZE = (128, 96)  # (width, height)


def read_back(path: Path) -> list[np.ndarray]:
    reader = VideoFileReader(path, with_index=False)
    reader.open()
    frames = []
    while True:
        try:
            frames.append(reader.next().copy())
        except StopIteration:
            break
    reader.close()
    return frames


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def write(writer: VideofileWriter, frames: list[np.ndarray]) -> None:
    writer.open()
    try:
        for frame in frames:
            writer.consume(frame)
    finally:
        writer.close()


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".MP4"])
def test_writer_round_trips_frames(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"out{ext}"
    frames = [clip_frame(i, SIZE) for i in range(10)]
    writer = VideofileWriter(path, fps=25)
    write(writer, frames)
    assert writer.frames_written == 10
    back = read_back(path)
    assert len(back) == 10
    for original, decoded in zip(frames, back, strict=True):
        assert decoded.shape == (96, 128, 3)
        assert mean_error(original, decoded) < 8
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(25, abs=0.5)
    capture.release()


def test_writer_swaps_channels_when_asked(tmp_path: Path) -> None:
    blue_bgr = np.zeros((64, 64, 3), np.uint8)
    blue_bgr[..., 0] = 255
    write(VideofileWriter(tmp_path / "a.avi", swap_channels=True), [blue_bgr] * 2)
    decoded = read_back(tmp_path / "a.avi")[0]
    assert decoded[32, 32, 2] > 200 and decoded[32, 32, 0] < 50, "the writer took the frame as RGB"


def test_writer_sizes_the_video_by_the_first_frame_and_resizes_the_others(tmp_path: Path) -> None:
    frames = [clip_frame(0, SIZE), clip_frame(1, (256, 192)), clip_frame(2, (64, 48))]
    write(VideofileWriter(tmp_path / "sizes.mp4"), frames)
    back = read_back(tmp_path / "sizes.mp4")
    assert [f.shape for f in back] == [(96, 128, 3)] * 3
    assert mean_error(back[1], clip_frame(1, SIZE)) < 12


def test_writer_writes_gray_frames(tmp_path: Path) -> None:
    gray = np.zeros((48, 64), np.uint8)
    gray[10:30, 20:40] = 255
    write(VideofileWriter(tmp_path / "edges.avi"), [gray, gray])
    back = read_back(tmp_path / "edges.avi")
    assert len(back) == 2
    assert back[0][20, 30].min() > 200 and back[0][40, 5].max() < 50


def test_writer_without_frames_writes_no_file(tmp_path: Path) -> None:
    write(VideofileWriter(tmp_path / "none.mp4"), [])
    assert not (tmp_path / "none.mp4").exists()


def test_writer_checks_the_extension_at_construction() -> None:
    with pytest.raises(NodeConfigError, match=r"VideofileWriter 'w': video_file must end in \.mp4 or \.avi"):
        VideofileWriter("out.mkv", name="w")
    with pytest.raises(ValueError, match="must end in"):  # NodeConfigError is a ValueError, as videoflow raised
        VideofileWriter("out")


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"fps": 0}, "fps must be > 0"), ({"swap_channels": "no"}, "swap_channels")]
)
def test_writer_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(NodeConfigError, match=match):
        VideofileWriter("out.mp4", **kwargs)  # type: ignore[arg-type]


def test_writer_into_a_missing_folder_names_the_node(tmp_path: Path) -> None:
    writer = VideofileWriter(tmp_path / "missing" / "out.mp4", name="w")
    writer.open()
    with pytest.raises(OSError, match=r"VideofileWriter 'w': OpenCV cannot write .*does not exist"):
        writer.consume(clip_frame(0, SIZE))
    writer.close()


def test_writer_rejects_what_is_not_a_frame(tmp_path: Path) -> None:
    writer = VideofileWriter(tmp_path / "x.mp4", name="w")
    writer.open()
    with pytest.raises(TypeError, match="FrameIndexSplitter"):
        writer.consume((1, clip_frame(0, SIZE)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="uint8"):
        writer.consume(np.zeros((8, 8, 3), np.float32))
    writer.close()


def test_writer_pickles_without_its_file(tmp_path: Path) -> None:
    writer = VideofileWriter(tmp_path / "p.avi", fps=12, name="sink")
    writer.open()
    writer.consume(clip_frame(0, SIZE))
    copy = pickle.loads(pickle.dumps(writer))
    writer.close()
    assert (copy.video_file, copy.fps, copy.fourcc, copy._writer) == (str(tmp_path / "p.avi"), 12.0, "MJPG", None)


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_writer_pads_odd_sizes_to_even_and_cuts_nothing(tmp_path: Path, ext: str) -> None:
    # Codecs need even sizes: OpenCV alone writes a 33x17 frame as a 32x16 video (last column and row lost).
    frame = np.full((17, 33, 3), 40, np.uint8)
    frame[:, 32] = (0, 0, 250)  # the last column: red
    frame[16, :32] = (250, 0, 0)  # the last row: blue
    path = tmp_path / f"odd{ext}"
    writer = VideofileWriter(path)
    write(writer, [frame, frame, np.full((34, 66, 3), 40, np.uint8)])
    assert writer.frames_written == 3
    capture = cv2.VideoCapture(str(path))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (34, 18)
    decoded = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        decoded.append(image)
    capture.release()
    assert [d.shape for d in decoded] == [(18, 34, 3)] * 3
    first = decoded[0].astype(np.int16)
    # The frame's own pixels are all there, the last column and row included ...
    assert mean_error(decoded[0][:17, :33], frame) < 12
    assert first[2:15, 32, 2].mean() > 180 and first[2:15, 32, 0].mean() < 80, "the last column was cut"
    assert first[16, 2:30, 0].mean() > 180 and first[16, 2:30, 2].mean() < 80, "the last row was cut"
    # ... and the padding repeats them: a red column 33, a blue row 17 (not black).
    assert first[2:15, 33, 2].mean() > 180
    assert first[17, 2:30, 0].mean() > 180
    # A later frame of another size is resized to the first's 33x17, then padded the same way.
    assert mean_error(decoded[2][:17, :33], np.full((17, 33, 3), 40, np.uint8)) < 12


def test_writer_pads_odd_gray_frames(tmp_path: Path) -> None:
    gray = np.zeros((17, 21), np.uint8)
    gray[:, 20] = 255  # the last column
    write(VideofileWriter(tmp_path / "gray.avi"), [gray, gray])
    capture = cv2.VideoCapture(str(tmp_path / "gray.avi"))
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape[:2] == (18, 22)
    assert image[2:15, 20].min() > 180 and image[2:15, 21].min() > 180 and image[2:15, 2:18].max() < 60
