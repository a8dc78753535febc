"""Tests for asyncflow.producers.video and asyncflow.video.synthetic: readers on generated clips, in-process."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import ProducerNode
from asyncflow.producers import (
    ImageFolderReader,
    ImageProducer,
    VideoDeviceReader,
    VideoFileReader,
    VideofileReader,
    VideostreamReader,
    VideoUrlReader,
)
from asyncflow.video import clip_boxes, clip_frame, make_clip

SIZE = (160, 96)  # (width, height)


def drain(producer: ProducerNode, limit: int = 1000, copy: bool = True) -> list[Any]:
    """Every item until StopIteration; frames are copied, since the readers reuse their buffer."""
    items = []
    for _ in range(limit):
        try:
            item = producer.next()
        except StopIteration:
            return items
        if copy and isinstance(item, tuple):
            item = (item[0], item[1].copy())
        elif copy and isinstance(item, np.ndarray):
            item = item.copy()
        items.append(item)
    raise AssertionError(f"{producer!r} did not stop after {limit} items")


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.avi", nb_frames=12, size=SIZE, fps=10)


# -- make_clip ------------------------------------------------------------------


def test_clip_frames_are_deterministic_and_move() -> None:
    first, again = clip_frame(3, SIZE), clip_frame(3, SIZE)
    assert first.shape == (96, 160, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(clip_frame(4, SIZE), first)
    assert not np.array_equal(clip_boxes(4, SIZE), clip_boxes(3, SIZE))


def test_clip_boxes_lie_in_the_frame_and_hold_the_shapes() -> None:
    background = clip_frame(0, (640, 360)).astype(np.int16)
    for index in (0, 50, 299):
        frame = clip_frame(index, (640, 360))
        for ymin, xmin, ymax, xmax in clip_boxes(index, (640, 360)).tolist():
            assert 0 <= ymin < ymax < 360 and 0 <= xmin < xmax < 640
            cy, cx = (ymin + ymax) // 2, (xmin + xmax) // 2
            assert frame[cy, cx].tolist() != background[0, 0].tolist()


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_make_clip_writes_a_video_opencv_reads_back(tmp_path: Path, ext: str) -> None:
    path = make_clip(tmp_path / f"c{ext}", nb_frames=5, size=SIZE)
    assert path == str(tmp_path / f"c{ext}")
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 5
    assert mean_error(frames[2], clip_frame(2, SIZE)) < 8


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"path": "x.mkv"}, ValueError), ({"nb_frames": 0}, ValueError), ({"size": (8, 8)}, ValueError)],
)
def test_make_clip_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], error: type[Exception]) -> None:
    args: dict[str, Any] = {"path": tmp_path / "c.avi", **kwargs}
    with pytest.raises(error):
        make_clip(**args)


def test_make_clip_into_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="cannot write"):
        make_clip(tmp_path / "missing" / "c.avi", nb_frames=2, size=SIZE)


# -- VideoFileReader ------------------------------------------------------------


def test_file_reader_round_trips_the_clip(clip: str) -> None:
    reader = VideoFileReader(clip)
    reader.open()
    items = drain(reader)
    reader.close()
    assert [index for index, _ in items] == list(range(1, 13))
    for index, frame in items:
        assert frame.shape == (96, 160, 3) and frame.dtype == np.uint8
        assert mean_error(frame, clip_frame(index - 1, SIZE)) < 8
    # frames differ from each other: the content is the clip's, not one buffer repeated
    assert mean_error(items[0][1], items[-1][1]) > 1


def test_file_reader_nb_frames_and_len_hint(clip: str) -> None:
    assert VideoFileReader(clip).len_hint == 12
    assert VideoFileReader(clip, nb_frames=5).len_hint == 5
    assert VideoFileReader(clip, nb_frames=50).len_hint == 12
    reader = VideoFileReader(clip, nb_frames=5)
    reader.open()
    assert reader.len_hint == 5
    assert len(drain(reader)) == 5
    reader.close()


def test_file_reader_keeps_raising_stop_iteration_and_can_run_again(clip: str) -> None:
    reader = VideoFileReader(clip, nb_frames=3)
    reader.open()
    assert len(drain(reader)) == 3
    for _ in range(2):
        with pytest.raises(StopIteration):
            reader.next()
    reader.close()
    reader.open()
    assert [i for i, _ in drain(reader)] == [1, 2, 3]
    reader.close()


def test_file_reader_without_index_and_with_swapped_channels(clip: str) -> None:
    plain = VideoFileReader(clip, nb_frames=1, with_index=False)
    swapped = VideoFileReader(clip, True, 1, with_index=False)
    for node in (plain, swapped):
        node.open()
    bgr, rgb = plain.next(), swapped.next()
    assert isinstance(bgr, np.ndarray)
    assert np.array_equal(bgr[..., ::-1], rgb)
    for node in (plain, swapped):
        node.close()


def test_file_reader_reuses_its_buffer(clip: str) -> None:
    # The documented behaviour: the engine fixes each item as it is returned, so
    # the reader may decode every frame into the same array.
    reader = VideoFileReader(clip, with_index=False)
    reader.open()
    first = reader.next()
    second = reader.next()
    reader.close()
    assert first is second or np.shares_memory(first, second)


def test_videofile_reader_is_videoflows_alias() -> None:
    assert VideofileReader is VideoFileReader
    assert issubclass(VideoFileReader, VideostreamReader)


def test_file_reader_names_the_node_when_the_file_is_missing(tmp_path: Path) -> None:
    reader = VideoFileReader(tmp_path / "none.mp4", name="cam")
    assert reader.len_hint is None
    with pytest.raises(FileNotFoundError, match="VideoFileReader 'cam': no such video file"):
        reader.open()


def test_file_reader_names_the_node_when_the_file_is_not_a_video(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(OSError, match="VideoFileReader 'cam': OpenCV cannot open"):
        VideoFileReader(junk, name="cam").open()


def test_file_reader_next_before_open_says_so(clip: str) -> None:
    with pytest.raises(RuntimeError, match="before open"):
        VideoFileReader(clip).next()


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((3,), {}, "video_file must be a str or a path"),
        (("",), {}, "non-empty"),
        (("a.mp4", "yes"), {}, "swap_channels must be True or False"),
        (("a.mp4",), {"nb_frames": -2}, "nb_frames must be an int >= 0, or -1"),
        (("a.mp4",), {"nb_frames": 1.5}, "nb_frames"),
        (("a.mp4",), {"with_index": 1}, "with_index"),
    ],
)
def test_file_reader_rejects_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(NodeConfigError, match=match):
        VideoFileReader(*args, **kwargs)


def test_file_reader_pickles_without_its_capture(clip: str) -> None:
    reader = VideoFileReader(clip, nb_frames=2, name="src")
    reader.open()
    reader.next()
    copy = pickle.loads(pickle.dumps(reader))
    reader.close()
    assert (copy.video_file, copy.nb_frames, copy.name, copy._capture) == (clip, 2, "src", None)
    copy.open()
    assert [i for i, _ in drain(copy)] == [1, 2]
    copy.close()


# -- VideoDeviceReader, VideoUrlReader -------------------------------------------


def test_device_reader_names_the_node_when_the_device_cannot_be_opened() -> None:
    reader = VideoDeviceReader(97, nb_frames=10, name="webcam")
    assert reader.len_hint == 10
    assert VideoDeviceReader(0).len_hint is None
    with pytest.raises(OSError, match="VideoDeviceReader 'webcam': cannot open video device 97"):
        reader.open()


def test_url_reader_names_the_node_when_the_stream_cannot_be_opened(tmp_path: Path) -> None:
    url = (tmp_path / "nothing-here.mp4").as_uri()
    with pytest.raises(OSError, match="VideoUrlReader 'feed': cannot open video stream"):
        VideoUrlReader(url, name="feed").open()


def test_url_reader_reads_what_opencv_opens(clip: str) -> None:
    # A path is what every OpenCV build opens; it stands in for a stream URL here.
    reader = VideoUrlReader(clip, nb_frames=4, with_index=False)
    reader.open()
    frames = drain(reader)
    reader.close()
    assert len(frames) == 4
    assert mean_error(frames[3], clip_frame(3, SIZE)) < 8


def test_stream_reader_retries_reopen_the_source(clip: str) -> None:
    # A file reopened after its end starts again: two retries read it three times.
    reader = VideostreamReader(clip, nb_retries=2)
    reader.open()
    indexes = [i for i, _ in drain(reader)]
    reader.close()
    assert indexes == list(range(1, 37))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: VideoDeviceReader(-1), "url_or_deviceid must be >= 0"),
        (lambda: VideoDeviceReader(0, nb_retries=-1), "nb_retries must be >= 0"),
        (lambda: VideoUrlReader(5), "url must be a str"),
    ],
)
def test_stream_readers_reject_bad_arguments(factory: Any, match: str) -> None:
    with pytest.raises(NodeConfigError, match=match):
        factory()


# -- ImageFolderReader, ImageProducer ---------------------------------------------


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in (2, 0, 1):  # written out of order: the reader sorts by name
        assert cv2.imwrite(str(folder / f"frame_{index:03d}.png"), clip_frame(index, SIZE))
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub.png").mkdir()  # a folder with an image's name is skipped
    return folder


def test_image_folder_reader_emits_sorted_images(image_folder: Path) -> None:
    reader = ImageFolderReader(image_folder)
    assert reader.len_hint == 3
    reader.open()
    items = drain(reader, copy=False)
    reader.close()
    assert [i for i, _ in items] == [1, 2, 3]
    for index, image in items:
        assert np.array_equal(image, clip_frame(index - 1, SIZE))  # PNG is lossless


def test_image_folder_reader_without_index_and_swapped(image_folder: Path) -> None:
    reader = ImageFolderReader(image_folder, swap_channels=True, with_index=False)
    reader.open()
    images = drain(reader, copy=False)
    assert len(images) == 3
    assert np.array_equal(images[0], clip_frame(0, SIZE)[..., ::-1])


def test_image_folder_reader_errors_name_the_node(tmp_path: Path, image_folder: Path) -> None:
    assert ImageFolderReader(tmp_path / "missing").len_hint is None
    with pytest.raises(FileNotFoundError, match="ImageFolderReader 'imgs': no such image folder"):
        ImageFolderReader(tmp_path / "missing", name="imgs").open()
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        ImageFolderReader(image_folder / "notes.txt").open()
    (image_folder / "frame_001.png").write_bytes(b"broken")
    reader = ImageFolderReader(image_folder, name="imgs")
    reader.open()
    reader.next()
    with pytest.raises(OSError, match=r"ImageFolderReader 'imgs': OpenCV cannot decode .*frame_001\.png"):
        reader.next()


def test_image_folder_reader_empty_folder_emits_nothing(tmp_path: Path) -> None:
    reader = ImageFolderReader(tmp_path)
    reader.open()
    assert drain(reader) == []
    assert reader.len_hint == 0


def test_image_producer_emits_the_image_once(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), clip_frame(5, SIZE))
    producer = ImageProducer(path)
    assert producer.len_hint == 1
    producer.open()
    items = drain(producer, copy=False)
    producer.close()
    assert len(items) == 1 and np.array_equal(items[0], clip_frame(5, SIZE))
    copy = pickle.loads(pickle.dumps(ImageProducer(path, swap_channels=True)))
    copy.open()
    assert np.array_equal(copy.next(), clip_frame(5, SIZE)[..., ::-1])


def test_image_producer_errors_name_the_node(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ImageProducer 'img': no such image file"):
        ImageProducer(tmp_path / "none.png", name="img").open()
    with pytest.raises(RuntimeError, match="before open"):
        ImageProducer(tmp_path / "none.png").next()


# -- optional dependencies ----------------------------------------------------------


def test_node_packages_import_no_optional_dependency() -> None:
    code = (
        "import sys, asyncflow, asyncflow.core, asyncflow.producers, asyncflow.processors, asyncflow.consumers\n"
        "heavy = sorted({'cv2', 'numpy', 'httpx'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
        "from asyncflow.producers import VideoFileReader\n"
        "from asyncflow.processors import MotionDetector\n"
        "from asyncflow.consumers import VideofileWriter, WebhookConsumer\n"
        "assert {'cv2', 'httpx'} <= set(sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_unknown_names_still_raise_attribute_error() -> None:
    import asyncflow.producers

    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        asyncflow.producers.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_a_missing_optional_dependency_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['cv2'] = None  # as if OpenCV were not installed\n"
        "try:\n"
        "    from asyncflow.producers import VideoFileReader\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "asyncflow.producers.VideoFileReader needs the 'cv2' package" in result.stdout
    assert "pip install 'asyncflow[video]'" in result.stdout
