"""Tests for OnnxDetector on tiny ONNX models built here with onnx.helper (no download, no Ultralytics).

Two kinds of model stand in for a YOLO export, with its input and output layout:

- a *constant* model, whose output is a fixed ``[batch, 4 + C, N]`` tensor of
  known boxes (``cx, cy, w, h`` in the model input's pixels, then C scores):
  for the thresholds, the NMS and the letterbox maths;
- a *pixel* model, which "detects" every pixel of its input: one 1x1 box per
  pixel, scored by the pixel's red (class 0) and blue (class 1) values: for the
  pre-processing (RGB order, 0..1 scaling, gray padding) and the batch axis.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from asyncflow.consumers import ResultsConsumer  # noqa: E402
from asyncflow.core import Flow  # noqa: E402
from asyncflow.core.errors import NodeConfigError, NodeFailedError  # noqa: E402
from asyncflow.processors import BoundingBoxAnnotator, OnnxDetector  # noqa: E402
from asyncflow.processors.vision.onnx import COCO80_TO_91, letterbox, non_max_suppression  # noqa: E402
from asyncflow.producers import IterableProducer  # noqa: E402

OPSET = [helper.make_operatorsetid("", 17)]
IR_VERSION = 8
GRAY = 114 / 255


def save(graph: Any, path: Path, metadata: dict[str, str] | None = None, check: bool = True) -> str:
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=IR_VERSION)
    if metadata:
        helper.set_model_props(model, metadata)
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def image_input(batch: int | str, width: int, height: int) -> Any:
    return helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, height, width])


def constant_model(
    path: Path,
    boxes: Sequence[Sequence[float]],
    nb_classes: int,
    size: tuple[int, int] = (64, 64),
    batch: int | str = "batch",
    metadata: dict[str, str] | None = None,
) -> str:
    """A model whose output is ``boxes`` (rows ``cx, cy, w, h, score_0 .. score_C-1``) for any input.

    The output is ``[batch, 4 + C, N]``: the constant is added to 0 x the input's
    mean, so the batch axis follows the input's.
    """
    width, height = size
    table = np.zeros((1, 4 + nb_classes, len(boxes)), np.float32)
    for n, row in enumerate(boxes):
        table[0, :, n] = row
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "shape3"], ["mean3"]),
        helper.make_node("Mul", ["mean3", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "table"], ["output0"]),
    ]
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([0, 1, 1], np.int64), "shape3"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
    ]
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 4 + nb_classes, len(boxes)])
    graph = helper.make_graph(nodes, "constant", [image_input(batch, width, height)], [output], initializers)
    return save(graph, path, metadata)


def pixel_model(path: Path, size: int = 32, batch: int | str = "batch") -> str:
    """Every pixel of the input is a 1x1 box; class 0 scores its red channel, class 1 its blue one."""
    count = size * size
    ys, xs = np.mgrid[0:size, 0:size].reshape(2, -1).astype(np.float32)
    boxes = np.stack([xs + 0.5, ys + 0.5, np.ones(count, np.float32), np.ones(count, np.float32)])[None]
    nodes = [
        helper.make_node("Slice", ["images", "s0", "e0", "axis1"], ["red"]),
        helper.make_node("Slice", ["images", "s2", "e2", "axis1"], ["blue"]),
        helper.make_node("Reshape", ["red", "flat"], ["red_row"]),
        helper.make_node("Reshape", ["blue", "flat"], ["blue_row"]),
        helper.make_node("Mul", ["red_row", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "boxes"], ["box_rows"]),
        helper.make_node("Concat", ["box_rows", "red_row", "blue_row"], ["output0"], axis=1),
    ]
    initializers = [
        numpy_helper.from_array(boxes.astype(np.float32), "boxes"),
        numpy_helper.from_array(np.array([0], np.int64), "s0"),
        numpy_helper.from_array(np.array([1], np.int64), "e0"),
        numpy_helper.from_array(np.array([2], np.int64), "s2"),
        numpy_helper.from_array(np.array([3], np.int64), "e2"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([0, 1, -1], np.int64), "flat"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
    ]
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 6, count])
    graph = helper.make_graph(nodes, "pixels", [image_input(batch, size, size)], [output], initializers)
    return save(graph, path)


def opened(path: str, **kwargs: Any) -> OnnxDetector:
    kwargs.setdefault("class_ids", None)
    node = OnnxDetector(path, **kwargs)
    node.open()
    return node


class CountingSession:
    """Wraps an onnxruntime session and counts its ``run`` calls and their batch sizes."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.batches: list[int] = []

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.batches.append(next(iter(feeds.values())).shape[0])
        return self.session.run(names, feeds)


def count_runs(node: OnnxDetector) -> CountingSession:
    counting = CountingSession(node._session)
    node._session = counting
    return counting


def frame(height: int, width: int, value: int = 0) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


# -- letterbox ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "scaled", "pad"),
    [
        (100, 200, (64, 32), (0, 16)),  # wide: padded top and bottom
        (200, 100, (32, 64), (16, 0)),  # tall: padded left and right
        (23 * 4, 64 * 4, (64, 23), (0, 20)),  # odd padding: the extra row goes at the bottom
        (32, 32, (64, 64), (0, 0)),  # scaled up, as Ultralytics does
    ],
)
def test_letterbox_keeps_the_aspect_ratio_and_centres_with_gray(
    height: int, width: int, scaled: tuple[int, int], pad: tuple[int, int]
) -> None:
    image = frame(height, width, 200)
    padded, ratio, (left, top) = letterbox(image, (64, 64))
    assert padded.shape == (64, 64, 3)
    assert ratio == pytest.approx(min(64 / height, 64 / width))
    assert (left, top) == pad
    inside = padded[top : top + scaled[1], left : left + scaled[0]]
    assert (inside == 200).all()
    outside = padded.copy()
    outside[top : top + scaled[1], left : left + scaled[0]] = 114
    assert (outside == 114).all(), "everything around the scaled frame is gray 114"


def test_letterbox_to_a_non_square_input() -> None:
    padded, ratio, (left, top) = letterbox(frame(90, 120, 7), (96, 64))  # (width, height)
    assert padded.shape == (64, 96, 3)
    assert ratio == pytest.approx(64 / 90)
    assert (left, top) == (5, 0)  # 120 * 64 / 90 = 85.3 -> 85 wide, 11 px of padding: 5 left, 6 right
    assert (padded[:, 5:90] == 7).all() and (padded[:, :5] == 114).all() and (padded[:, 90:] == 114).all()


# -- boxes mapped back to the frame ------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(100, 200), (200, 100), (31, 90), (360, 640)])
def test_boxes_map_back_to_the_frame_through_the_letterbox(tmp_path: Path, height: int, width: int) -> None:
    box = (30.0, 34.0, 20.0, 10.0)  # cx, cy, w, h in the 64x64 input
    node = opened(constant_model(tmp_path / "m.onnx", [(*box, 0.9)], 1))
    out = node.process(frame(height, width))
    assert out.shape == (1, 6) and out.dtype == np.float32
    ratio = min(64 / height, 64 / width)
    left = round((64 - round(width * ratio)) / 2 - 0.1)
    top = round((64 - round(height * ratio)) / 2 - 0.1)
    cx, cy, w, h = box
    expected = [
        np.clip((cy - h / 2 - top) / ratio, 0, height),
        np.clip((cx - w / 2 - left) / ratio, 0, width),
        np.clip((cy + h / 2 - top) / ratio, 0, height),
        np.clip((cx + w / 2 - left) / ratio, 0, width),
    ]
    assert out[0, :4] == pytest.approx(expected, abs=1e-3)
    assert out[0, 4] == 0 and out[0, 5] == pytest.approx(0.9)


def test_boxes_are_clipped_to_the_frame(tmp_path: Path) -> None:
    # A box over the padding and past the input's edge: clipped to the 100x200 frame.
    node = opened(constant_model(tmp_path / "m.onnx", [(10, 10, 40, 40, 0.8)], 1))
    out = node.process(frame(100, 200))
    # x: -10 .. 30 in the input -> 0 .. 93.75; y: -10 .. 30, padding 16 -> -81 .. 43.75 -> 0 .. 43.75
    assert out[0, :4] == pytest.approx([0, 0, 43.75, 93.75])


def test_a_model_with_a_non_square_input(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "m.onnx", [(48, 32, 32, 32, 0.7)], 1, size=(96, 64))
    node = opened(path)
    assert node._size == (96, 64)
    out = node.process(frame(90, 120))  # ratio 64 / 90, 5 px of padding on the left
    ratio = 64 / 90
    assert out[0, :4] == pytest.approx([16 / ratio, (32 - 5) / ratio, 48 / ratio, (64 - 5) / ratio], abs=1e-3)


# -- pre-processing, seen through the pixel model -----------------------------------------------


def test_frames_go_in_as_rgb_in_0_1_with_gray_padding(tmp_path: Path) -> None:
    node = opened(pixel_model(tmp_path / "p.onnx"), confidence_threshold=0.5, iou_threshold=0.5, max_detections=2000)
    image = frame(32, 64)  # letterboxed into 32x32: ratio 0.5, 8 rows of padding above and below
    image[10:20, 20:40] = (0, 0, 255)  # red in BGR
    image[4:8, 48:60] = (255, 0, 0)  # blue in BGR
    out = node.process(image)
    red, blue = out[out[:, 4] == 0], out[out[:, 4] == 1]
    assert len(red) == 5 * 10 and len(blue) == 2 * 6, "one box per pixel of the 2x-smaller squares"
    assert (red[:, 5] == 1).all() and (blue[:, 5] == 1).all(), "255 comes in as 1.0"
    # Together the pixels' boxes cover exactly the squares, mapped back to the frame.
    assert [red[:, 0].min(), red[:, 1].min(), red[:, 2].max(), red[:, 3].max()] == pytest.approx([10, 20, 20, 40])
    assert [blue[:, 0].min(), blue[:, 1].min(), blue[:, 2].max(), blue[:, 3].max()] == pytest.approx([4, 48, 8, 60])

    padding = opened(pixel_model(tmp_path / "p.onnx"), confidence_threshold=0.4, max_detections=2000)
    out = padding.process(frame(32, 64))  # a black frame: only the gray padding scores
    assert len(out) == 2 * 8 * 32, "the 16 padded rows (one class per box: the first of two equal scores)"
    assert (out[:, 4] == 0).all()
    assert out[:, 5] == pytest.approx(np.full(len(out), GRAY))
    assert (out[:, 0] == out[:, 2]).all(), "padding maps outside the frame: clipped to its top or bottom edge"


def test_gray_and_bgra_frames_are_accepted(tmp_path: Path) -> None:
    node = opened(pixel_model(tmp_path / "p.onnx"), confidence_threshold=0.5, max_detections=2000)
    gray = np.zeros((32, 32), np.uint8)
    gray[0:4, 0:4] = 255
    out = node.process(gray)
    assert len(out) == 16 and (out[:, 5] == 1).all(), "gray: red and blue alike (one class per box)"
    bgra = np.zeros((32, 32, 4), np.uint8)
    bgra[0:4, 0:4] = (0, 0, 255, 0)
    assert len(node.process(bgra)) == 16
    with pytest.raises(TypeError, match="OnnxDetector 'd': needs uint8 frames"):
        opened(pixel_model(tmp_path / "p.onnx"), name="d").process(np.zeros((8, 8, 3), np.float32))


# -- thresholds and NMS ----------------------------------------------------------------------


def test_confidence_threshold_keeps_scores_above_it(tmp_path: Path) -> None:
    boxes = [(10, 10, 8, 8, 0.9), (40, 10, 8, 8, 0.3), (10, 40, 8, 8, 0.25), (40, 40, 8, 8, 0.1)]
    path = constant_model(tmp_path / "m.onnx", boxes, 1)
    assert opened(path).process(frame(64, 64))[:, 5] == pytest.approx([0.9, 0.3]), "0.25 by default, strictly above"
    assert opened(path, confidence_threshold=0.5).process(frame(64, 64))[:, 5] == pytest.approx([0.9])
    assert len(opened(path, confidence_threshold=0.0).process(frame(64, 64))) == 4


def test_each_box_keeps_its_best_class(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "m.onnx", [(20, 20, 10, 10, 0.2, 0.7, 0.1)], 3)
    out = opened(path).process(frame(64, 64))
    assert out[:, 4:].tolist() == [[1, pytest.approx(0.7)]]


def test_nms_overlapping_boxes_of_one_class_give_one(tmp_path: Path) -> None:
    # IoU of these two: 16x16 boxes shifted by 2 px -> 14*16 / (2*256 - 14*16) = 0.78
    boxes = [(20, 20, 16, 16, 0.8, 0.0), (22, 20, 16, 16, 0.9, 0.0), (50, 50, 8, 8, 0.6, 0.0)]
    out = opened(constant_model(tmp_path / "m.onnx", boxes, 2)).process(frame(64, 64))
    assert out[:, 5] == pytest.approx([0.9, 0.6]), "the better of the two overlapping boxes, then the lone one"
    assert out[0, :4] == pytest.approx([12, 14, 28, 30])


def test_nms_overlapping_boxes_of_two_classes_give_two(tmp_path: Path) -> None:
    boxes = [(20, 20, 16, 16, 0.8, 0.0), (22, 20, 16, 16, 0.0, 0.9)]
    out = opened(constant_model(tmp_path / "m.onnx", boxes, 2)).process(frame(64, 64))
    assert out[:, 4:].tolist() == [[1, pytest.approx(0.9)], [0, pytest.approx(0.8)]]


def test_nms_threshold_is_the_iou_above_which_boxes_merge(tmp_path: Path) -> None:
    # Shifted by 8 of 16 px: IoU = 128 / 384 = 1/3.
    boxes = [(20, 20, 16, 16, 0.9), (28, 20, 16, 16, 0.8)]
    path = constant_model(tmp_path / "m.onnx", boxes, 1)
    assert len(opened(path, iou_threshold=0.34).process(frame(64, 64))) == 2
    assert len(opened(path, iou_threshold=0.33).process(frame(64, 64))) == 1
    assert len(opened(path).process(frame(64, 64))) == 2, "0.45 by default"


def test_max_detections_keeps_the_best(tmp_path: Path) -> None:
    boxes = [(8 + 12 * i, 8, 8, 8, 0.3 + 0.1 * i) for i in range(5)]
    out = opened(constant_model(tmp_path / "m.onnx", boxes, 1), max_detections=2).process(frame(64, 64))
    assert out[:, 5] == pytest.approx([0.7, 0.6])


def test_non_max_suppression_function() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.5, 0.9, 0.7, 0.1], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert non_max_suppression(boxes, scores, classes, 0.45, 300).tolist() == [1, 2, 3]
    assert non_max_suppression(boxes, scores, classes, 0.45, 2).tolist() == [1, 2]
    assert non_max_suppression(boxes[:0], scores[:0], classes[:0], 0.45, 300).tolist() == []


# -- empty outputs ---------------------------------------------------------------------------


def test_no_boxes_give_an_empty_0_by_6_array(tmp_path: Path) -> None:
    below = opened(constant_model(tmp_path / "low.onnx", [(20, 20, 10, 10, 0.1)], 1)).process(frame(48, 64))
    assert below.shape == (0, 6) and below.dtype == np.float32
    none = opened(constant_model(tmp_path / "none.onnx", [], 3)).process(frame(48, 64))
    assert none.shape == (0, 6) and none.dtype == np.float32
    black = opened(pixel_model(tmp_path / "p.onnx"), confidence_threshold=0.5).process_batch([frame(32, 32)] * 2)
    assert [d.shape for d in black] == [(0, 6), (0, 6)]


# -- the batch axis ---------------------------------------------------------------------------


def marked_frames(count: int) -> list[np.ndarray]:
    """Frames of different sizes, each with a red square at its own place."""
    frames = []
    for i in range(count):
        image = frame(32 + 8 * (i % 2), 32 + 16 * i)
        image[2 * i : 2 * i + 4, 4 * i : 4 * i + 4] = (0, 0, 255)
        frames.append(image)
    return frames


def test_a_dynamic_batch_axis_runs_a_block_in_one_session_run(tmp_path: Path) -> None:
    path = pixel_model(tmp_path / "p.onnx")
    frames = marked_frames(5)
    alone = opened(path, confidence_threshold=0.5)
    expected = [alone.process(f) for f in frames]
    node = opened(path, confidence_threshold=0.5)
    runs = count_runs(node)
    got = node.process_batch(frames)
    assert runs.batches == [5], "one session.run for the block"
    assert len(got) == 5
    for want, have in zip(expected, got, strict=True):
        assert len(have) > 0
        np.testing.assert_allclose(have, want, atol=1e-4)

    chunked = opened(path, confidence_threshold=0.5, max_batch=2)
    runs = count_runs(chunked)
    again = chunked.process_batch(frames)
    assert runs.batches == [2, 2, 1], "a block larger than max_batch is split"
    for want, have in zip(expected, again, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-4)


def test_a_fixed_batch_axis(tmp_path: Path) -> None:
    frames = marked_frames(5)
    one = opened(pixel_model(tmp_path / "one.onnx", batch=1), confidence_threshold=0.5)
    runs = count_runs(one)
    expected = one.process_batch(frames)
    assert runs.batches == [1] * 5, "a batch-1 model runs each frame alone"
    four = opened(pixel_model(tmp_path / "four.onnx", batch=4), confidence_threshold=0.5)
    runs = count_runs(four)
    got = four.process_batch(frames)
    assert runs.batches == [4, 4], "a fixed batch of 4: blocks of 4, the last one padded"
    assert len(got) == 5
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-4)
    assert len(four.process(frames[0])) == len(expected[0])


def test_the_engine_uses_the_batch_method() -> None:
    from asyncflow.core.node import batch_method

    assert batch_method(OnnxDetector("m.onnx"), "process") is not None


# -- class ids -------------------------------------------------------------------------------


def test_coco_class_ids_and_the_annotator(tmp_path: Path) -> None:
    scores = [0.0] * 80
    scores[2] = 0.9  # Ultralytics' class 2: "car"
    path = constant_model(tmp_path / "coco.onnx", [(32, 32, 20, 20, *scores)], 80)
    out = opened(path, class_ids="coco").process(frame(64, 64))
    assert out[0, 4] == 3 == COCO80_TO_91[2]
    annotator = BoundingBoxAnnotator()
    assert annotator.labels[int(out[0, 4])] == "car"
    drawn = annotator.process(frame(64, 64), out)
    assert (drawn != 0).any()
    assert len(COCO80_TO_91) == 80 and COCO80_TO_91[0] == 1 and COCO80_TO_91[-1] == 90


def test_class_ids_checks(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "m.onnx", [(32, 32, 20, 20, 0.1, 0.9)], 2)
    assert opened(path, class_ids=[7, 9]).process(frame(64, 64))[0, 4] == 9
    with pytest.raises(ValueError, match="OnnxDetector 'd': the model has 2 classes, and class_ids='coco'"):
        OnnxDetector(path, class_ids="coco", name="d").open()
    with pytest.raises(ValueError, match="the model has 2 classes, class_ids gives 3"):
        opened(path, class_ids=[1, 2, 3])
    with pytest.raises(NodeConfigError, match="class_ids must be 'coco', None or a sequence"):
        OnnxDetector(path, class_ids="voc")  # type: ignore[arg-type]


# -- configuration and errors -------------------------------------------------------------------


def test_constructor_checks() -> None:
    with pytest.raises(NodeConfigError, match="confidence_threshold and iou_threshold must be between 0 and 1"):
        OnnxDetector("m.onnx", confidence_threshold=1.5)
    with pytest.raises(NodeConfigError, match="max_batch must be >= 1"):
        OnnxDetector("m.onnx", max_batch=0)
    with pytest.raises(NodeConfigError, match="model_path must be a str or a path"):
        OnnxDetector(3)  # type: ignore[arg-type]
    assert OnnxDetector("m.onnx", input_size=320).input_size == (320, 320)
    assert OnnxDetector("m.onnx", input_size=(320, 192)).input_size == (320, 192)


def test_a_missing_file_names_the_node(tmp_path: Path) -> None:
    node = OnnxDetector(tmp_path / "nowhere.onnx", name="det")
    with pytest.raises(FileNotFoundError, match=r"OnnxDetector 'det': model_path .*nowhere.onnx' does not exist"):
        node.open()
    with pytest.raises(RuntimeError, match="OnnxDetector 'det' is not open"):
        node.process(frame(8, 8))


def test_a_file_that_is_not_an_onnx_model_names_the_node(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"this is not a protobuf at all \x00\xff" * 10)
    with pytest.raises(ValueError, match=r"OnnxDetector 'det': cannot load .*bogus.onnx' as an ONNX model"):
        OnnxDetector(bogus, name="det").open()


def test_an_output_it_does_not_understand_names_the_node(tmp_path: Path) -> None:
    # Rank 2.
    flat = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["out"], axes=[2, 3], keepdims=0)],
        "flat", [image_input(1, 16, 16)], [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])],
    )
    with pytest.raises(ValueError, match=r"OnnxDetector 'det': .* has output\(s\) out \[1, 3\]; expected one output"):
        OnnxDetector(save(flat, tmp_path / "flat.onnx"), name="det").open()
    # Fewer than 4 + 1 rows.
    too_few = r"OnnxDetector 'det': the output of .*four.onnx' is \['batch', 4, 2\], fewer than 4 \+ 1 rows"
    with pytest.raises(ValueError, match=too_few):
        OnnxDetector(constant_model(tmp_path / "four.onnx", [(1, 1, 1, 1)] * 2, 0), name="det").open()
    # Two outputs (as a segmentation export has).
    two = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["a"]), helper.make_node("Identity", ["images"], ["b"])],
        "two", [image_input(1, 16, 16)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 16, 16]) for n in "ab"],
    )
    with pytest.raises(ValueError, match=r"OnnxDetector 'det': .* has output\(s\) a \[1, 3, 16, 16\], b"):
        OnnxDetector(save(two, tmp_path / "two.onnx"), name="det").open()
    # An input that is no image.
    vector = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "vector",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 5])],
    )
    with pytest.raises(ValueError, match=r"has input\(s\) x \[1, 6, 5\]; expected one image input"):
        OnnxDetector(save(vector, tmp_path / "vector.onnx"), name="det").open()
    # Another task, told by Ultralytics' metadata.
    pose = constant_model(tmp_path / "pose.onnx", [(1, 1, 1, 1, 1)], 1, metadata={"task": "pose"})
    with pytest.raises(ValueError, match="is a 'pose' model; OnnxDetector runs detection models"):
        OnnxDetector(pose, name="det").open()


def test_an_output_shape_known_only_when_run_is_checked_then(tmp_path: Path) -> None:
    # [batch, rows, boxes] with rows computed from the data (3): only running the model shows there are too few.
    nodes = [
        helper.make_node("Reshape", ["images", "flat"], ["rows"]),
        helper.make_node("ReduceMax", ["images"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "three"], ["count"]),
        helper.make_node("Cast", ["count"], ["count_int"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["count_int", "one"], ["ends"]),
        helper.make_node("Slice", ["rows", "starts", "ends", "axis1"], ["out"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([0, 3, -1], np.int64), "flat"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
        numpy_helper.from_array(np.array(3, np.float32), "three"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([0], np.int64), "starts"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "rows", "boxes"])
    graph = helper.make_graph(nodes, "late", [image_input("batch", 16, 16)], [output], initializers)
    node = opened(save(graph, tmp_path / "late.onnx"), name="det")
    with pytest.raises(ValueError, match=r"OnnxDetector 'det': the model's output has shape \[1, 3, 256\] for a batch"):
        node.process(frame(16, 16))


def test_input_size_for_dynamic_models(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "dyn.onnx", [(32, 32, 20, 20, 0.9)], 1, size=("h", "w"))  # type: ignore[arg-type]
    assert opened(path)._size == (640, 640), "Ultralytics' default"
    assert opened(path, input_size=(96, 64))._size == (96, 64)
    meta = constant_model(tmp_path / "meta.onnx", [(32, 32, 20, 20, 0.9)], 1, size=("h", "w"),  # type: ignore[arg-type]
                          metadata={"imgsz": "[64, 96]"})
    assert opened(meta)._size == (96, 64), "Ultralytics' imgsz metadata is [height, width]"
    fixed = constant_model(tmp_path / "fixed.onnx", [(32, 32, 20, 20, 0.9)], 1)
    with pytest.raises(ValueError, match=r"takes 64x64 images \(width x height\), input_size says 32x32"):
        opened(fixed, input_size=32)


# -- devices -----------------------------------------------------------------------------------


def test_gpu_without_cuda_falls_back_to_the_cpu_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the fallback is for one that has not")
    path = constant_model(tmp_path / "m.onnx", [(32, 32, 20, 20, 0.9)], 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with caplog.at_level(logging.INFO, logger="asyncflow.processors.vision.onnx"):
        node = opened(path, device_type="gpu", name="det")
    assert node.provider == "CPUExecutionProvider" and node.device == "cpu"
    assert "OnnxDetector 'det': device_type='gpu' but this onnxruntime has no CUDAExecutionProvider" in caplog.text
    assert "running on the CPU (cpu_fallback=True)" in caplog.text
    assert "OnnxDetector 'det': m.onnx on CPUExecutionProvider (cpu)" in caplog.text
    assert len(node.process(frame(64, 64))) == 1
    with pytest.raises(RuntimeError, match="OnnxDetector 'strict' needs a GPU and this onnxruntime has no CUDA"):
        OnnxDetector(path, device_type="gpu", cpu_fallback=False, name="strict", class_ids=None).open()


def test_a_gpu_task_the_engine_gave_no_gpu_runs_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = constant_model(tmp_path / "m.onnx", [(32, 32, 20, 20, 0.9)], 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what the engine sets for a task that fell back
    with caplog.at_level(logging.WARNING, logger="asyncflow.processors.vision.onnx"):
        node = opened(path, device_type="gpu", name="det")
    assert node.provider == "CPUExecutionProvider"
    assert "the task has no GPU (CUDA_VISIBLE_DEVICES is empty: the engine had none left for it)" in caplog.text


def test_cuda_that_does_not_start_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # onnxruntime lists CUDA but the session does not get it (no driver, libraries missing).
    import onnxruntime

    path = constant_model(tmp_path / "m.onnx", [(32, 32, 20, 20, 0.9)], 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    real = onnxruntime.InferenceSession
    asked: list[Any] = []

    def session(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        asked.append(providers)
        return real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: providers)
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    node = opened(path, device_type="gpu")
    assert asked[0][0] == ("CUDAExecutionProvider", {"device_id": 0}), "the task's one visible GPU"
    assert node.provider == "CPUExecutionProvider"
    with pytest.raises(RuntimeError, match="onnxruntime could not start CUDA on GPU 3"):
        opened(path, device_type="gpu", cpu_fallback=False)


def test_the_node_pickles_before_and_after_open(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "m.onnx", [(32, 32, 20, 20, 0.9)], 1)
    node = OnnxDetector(path, class_ids=None)
    copy = pickle.loads(pickle.dumps(node))
    node.open()
    reopened = pickle.loads(pickle.dumps(node))
    assert reopened._session is None
    copy.open()
    np.testing.assert_array_equal(copy.process(frame(64, 64)), node.process(frame(64, 64)))
    node.close()
    assert node._session is None


# -- in a flow ---------------------------------------------------------------------------------


async def test_in_a_flow_on_two_gpu_tasks_falling_back_to_the_cpu(tmp_path: Path) -> None:
    path = pixel_model(tmp_path / "p.onnx")
    frames = marked_frames(6)
    expected = [opened(path, confidence_threshold=0.5).process(f) for f in frames]
    source = IterableProducer(frames)
    detector = OnnxDetector(
        path, confidence_threshold=0.5, nb_tasks=2, device_type="gpu", class_ids=None, intra_op_num_threads=1
    )(source)
    sink = ResultsConsumer()(detector)
    flow = Flow([source], [sink], flow_options={"gpus": []})
    run = asyncio.create_task(flow.run())
    got = [item async for item in flow.results(sink)]
    await asyncio.wait_for(run, 60)
    assert len(got) == len(expected)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-4)


async def test_in_a_flow_a_missing_model_fails_the_run_naming_the_node(tmp_path: Path) -> None:
    source = IterableProducer([frame(16, 16)])
    detector = OnnxDetector(tmp_path / "gone.onnx", name="yolo")(source)
    sink = ResultsConsumer()(detector)
    with pytest.raises(NodeFailedError, match="yolo") as failure:
        await Flow([source], [sink]).run()
    assert failure.value.node == "yolo"
    assert isinstance(failure.value.__cause__, FileNotFoundError)
