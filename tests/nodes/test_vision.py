"""Tests for asyncflow.processors.vision: transformers, annotators and detectors on synthetic arrays, in-process."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from asyncflow.core.errors import NodeConfigError
from asyncflow.processors import (
    BoundingBoxAnnotator,
    CropImageTransformer,
    EdgeDetector,
    FrameIndexSplitter,
    ImageAnnotator,
    MaskImageTransformer,
    MotionDetector,
    ObjectDetector,
    ResizeImageTransformer,
    TrackerAnnotator,
)
from asyncflow.processors.vision.annotators import COCO_LABELS, parse_label_map
from asyncflow.video import clip_boxes, clip_frame

SIZE = (320, 180)  # (width, height)


def gradient(height: int = 40, width: int = 60) -> np.ndarray:
    """A frame whose every pixel differs from its neighbours: resizes and crops are easy to check."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 4 % 256, ys * 6 % 256, (xs + ys) % 256], axis=-1).astype(np.uint8)


def overlap(a: list[float], b: list[float]) -> float:
    """Intersection over the area of ``b``, for [ymin, xmin, ymax, xmax] boxes."""
    height = min(a[2], b[2]) - max(a[0], b[0])
    width = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, height) * max(0.0, width) / ((b[2] - b[0]) * (b[3] - b[1]))


# -- FrameIndexSplitter ---------------------------------------------------------------


def test_frame_index_splitter_returns_the_frame() -> None:
    frame = gradient()
    assert FrameIndexSplitter().process((7, frame)) is frame
    with pytest.raises(TypeError, match="FrameIndexSplitter 's': expected a \\(frame_index, frame\\) pair"):
        FrameIndexSplitter(name="s").process(5)  # type: ignore[arg-type]


# -- ResizeImageTransformer -------------------------------------------------------------


def test_resize_to_a_size_input_takes_height_width_as_videoflow() -> None:
    out = ResizeImageTransformer().process(gradient(40, 60), (20, 30))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8


def test_resize_to_a_fixed_size_takes_width_height() -> None:
    node = ResizeImageTransformer(size=(30, 20))
    out = node.process(gradient(40, 60))
    assert out.shape == (20, 30, 3)
    # halving with linear interpolation samples between source pixels: close to the source
    assert abs(int(out[10, 15, 0]) - int(gradient(40, 60)[20, 30, 0])) <= 4
    assert node.process(gradient(), (10, 12)).shape == (10, 12, 3), "an input size wins over size="


def test_resize_maintain_ratio_pads_bottom_right() -> None:
    image = np.full((40, 80, 3), 200, np.uint8)
    out = ResizeImageTransformer(True, size=(40, 40)).process(image)
    assert out.shape == (40, 40, 3)
    assert (out[:20] == 200).all()
    assert (out[20:] == 0).all()
    tall = ResizeImageTransformer(maintain_ratio=True).process(np.full((80, 20), 9, np.uint8), (40, 40))
    assert tall.shape == (40, 40)
    assert (tall[:, :10] == 9).all() and (tall[:, 10:] == 0).all()


def test_resize_does_not_touch_its_input() -> None:
    image = gradient()
    before = image.copy()
    ResizeImageTransformer(size=(7, 9)).process(image)
    assert np.array_equal(image, before)


def test_resize_errors_name_the_node() -> None:
    with pytest.raises(ValueError, match="ResizeImageTransformer 'r' has no target size"):
        ResizeImageTransformer(name="r").process(gradient())
    with pytest.raises(ValueError, match="new_size"):
        ResizeImageTransformer(name="r").process(gradient(), (-1, 5))
    with pytest.raises(NodeConfigError, match="size must be a pair \\(width, height\\)"):
        ResizeImageTransformer(size=(5,))  # type: ignore[arg-type]
    with pytest.raises(NodeConfigError, match="maintain_ratio"):
        ResizeImageTransformer("yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="FrameIndexSplitter"):
        ResizeImageTransformer(size=(5, 5)).process((1, gradient()))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an image array"):
        ResizeImageTransformer(size=(5, 5)).process(np.zeros(5))


# -- CropImageTransformer -----------------------------------------------------------------


def test_crop_returns_one_copy_per_box() -> None:
    image = gradient()
    crops = CropImageTransformer().process(image, np.array([[0, 0, 10, 20], [5.7, 10.2, 40, 60]]))
    assert [c.shape for c in crops] == [(10, 20, 3), (35, 50, 3)]
    assert np.array_equal(crops[0], image[:10, :20])
    assert np.array_equal(crops[1], image[5:40, 10:60])
    crops[0][:] = 0
    assert image[0, 1].any(), "crops are copies"


def test_crop_with_fixed_dimensions() -> None:
    node = CropImageTransformer([[1, 2, 3, 4]])
    assert [c.shape for c in node.process(gradient())] == [(2, 2, 3)]
    copy = pickle.loads(pickle.dumps(node))
    assert np.array_equal(copy.process(gradient())[0], gradient()[1:3, 2:4])


@pytest.mark.parametrize(
    ("boxes", "match"),
    [
        ([[-1, 0, 5, 5]], ">= 0"),
        ([[6, 0, 5, 5]], "ymin <= ymax"),
        ([[0, 6, 5, 5]], "xmin <= xmax"),
        ([[0, 0, 41, 5]], "outside the 40x60 frame"),
        ([[0, 0, 5, 61]], "outside the 40x60 frame"),
        ([[0, 0, 5]], "shape \\(nb_boxes, 4\\)"),
    ],
)
def test_crop_rejects_bad_boxes(boxes: list[list[int]], match: str) -> None:
    with pytest.raises(ValueError, match=f"CropImageTransformer 'c'.*{match}"):
        CropImageTransformer(name="c").process(gradient(), boxes)


def test_crop_without_dimensions_says_how_to_give_them() -> None:
    with pytest.raises(ValueError, match="has no crop dimensions"):
        CropImageTransformer().process(gradient())
    with pytest.raises(NodeConfigError, match="ymin <= ymax"):
        CropImageTransformer([[5, 0, 1, 1]])


# -- MaskImageTransformer ----------------------------------------------------------------


def test_mask_multiplies_each_channel() -> None:
    image = np.full((4, 6, 3), 200, np.uint8)
    mask = np.zeros((4, 6), np.float32)
    mask[:2] = 1.0
    mask[2:, :3] = 0.5
    out = MaskImageTransformer().process(image, mask)
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    assert (out[:2] == 200).all() and (out[2:, :3] == 100).all() and (out[2:, 3:] == 0).all()
    assert (image == 200).all()


def test_mask_of_another_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="MaskImageTransformer 'm': mask has shape \\(3, 3\\)"):
        MaskImageTransformer(name="m").process(gradient(), np.ones((3, 3)))


# -- annotators ---------------------------------------------------------------------------


def test_bounding_box_annotator_draws_boxes_and_labels_on_a_copy() -> None:
    image = np.zeros((100, 160, 3), np.uint8)
    boxes = np.array([[40, 40, 90, 120, 1, 0.9]], np.float32)
    node = BoundingBoxAnnotator(box_color=(0, 0, 255), text_color=(0, 255, 0))
    out = node.process(image, boxes)
    assert not image.any(), "the input is not modified"
    assert out.shape == image.shape and out.dtype == np.uint8
    # the outline is in box_color, the inside stays untouched
    assert out[40, 80].tolist() == [0, 0, 255] and out[90, 80].tolist() == [0, 0, 255]
    assert out[65, 40].tolist() == [0, 0, 255] and out[65, 120].tolist() == [0, 0, 255]
    assert not out[45:86, 45:116].any()
    # the label ("person: 90.00%") is drawn above the box, in text_color only
    label = out[:38, 40:160]
    assert (label[..., 1] > 0).any() and not label[..., 0].any() and not label[..., 2].any()


def test_bounding_box_annotator_labels() -> None:
    assert BoundingBoxAnnotator().labels == COCO_LABELS
    assert COCO_LABELS[1] == "person" and COCO_LABELS[90] == "toothbrush" and len(COCO_LABELS) == 80
    assert BoundingBoxAnnotator(class_labels={0: "motion"}).labels == {0: "motion"}
    assert BoundingBoxAnnotator(class_labels_dataset=None).labels == {}
    with pytest.raises(NodeConfigError, match="'kitti' label map is not bundled"):
        BoundingBoxAnnotator(class_labels_dataset="kitti")
    with pytest.raises(NodeConfigError, match="class_labels_dataset must be one of"):
        BoundingBoxAnnotator(class_labels_dataset="imagenet")


def test_label_map_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "labels.pbtxt"
    path.write_text(
        'item {\n  name: "/m/01"\n  id: 1\n  display_name: "cat"\n}\n'
        "item {\n  id: 2\n  name: 'dog'\n}\n"
    )
    assert parse_label_map(path) == {1: "cat", 2: "dog"}
    assert BoundingBoxAnnotator(path).labels == {1: "cat", 2: "dog"}
    with pytest.raises(NodeConfigError, match="cannot read class_labels_path"):
        BoundingBoxAnnotator(tmp_path / "none.pbtxt")


def test_annotators_accept_no_boxes_and_reject_bad_ones() -> None:
    image = gradient()
    for boxes in (None, [], np.zeros((0, 6))):
        assert np.array_equal(BoundingBoxAnnotator().process(image, boxes), image)
    with pytest.raises(ValueError, match="BoundingBoxAnnotator 'b': boxes must have shape \\(nb_boxes, 6\\)"):
        BoundingBoxAnnotator(name="b").process(image, [[1, 2, 3, 4]])
    with pytest.raises(NodeConfigError, match="box_color"):
        BoundingBoxAnnotator(box_color=(0, 0, 300))
    with pytest.raises(NodeConfigError, match="box_thickness"):
        TrackerAnnotator(box_thickness=0)


def test_annotator_draws_the_frame_index_when_given() -> None:
    image = np.zeros((60, 100, 3), np.uint8)
    plain = TrackerAnnotator().process(image, [])
    numbered = TrackerAnnotator().process(image, [], 12)
    from_pair = TrackerAnnotator().process(image, [], (12, image))
    assert not plain.any()
    assert numbered[:25, :50].any() and not numbered[30:].any()
    assert np.array_equal(numbered, from_pair)


def test_tracker_annotator_draws_track_ids() -> None:
    image = np.zeros((100, 160, 3), np.uint8)
    out = TrackerAnnotator(box_color=(255, 0, 0), text_color=(0, 0, 255)).process(image, [[40, 30, 90, 100, 7]])
    assert out[40, 60].tolist() == [255, 0, 0]
    assert (out[:40, 30:100, 2] > 0).any(), "the track id is written above the box"
    assert not image.any()


class Crosshair(ImageAnnotator):
    """A minimal annotator: a white pixel at the given (y, x)."""

    def _annotate(self, im: np.ndarray, annotations: Any) -> np.ndarray:
        y, x = annotations
        im[y, x] = 255
        return im


def test_image_annotator_subclass_gets_a_private_copy() -> None:
    image = np.zeros((5, 5, 3), np.uint8)
    out = Crosshair().process(image, (2, 3))
    assert out[2, 3].tolist() == [255, 255, 255] and not image.any()
    with pytest.raises(NotImplementedError, match="_annotate"):
        ImageAnnotator().process(image, None)


# -- detectors --------------------------------------------------------------------------


def test_motion_detector_boxes_the_moving_shapes() -> None:
    detector = MotionDetector()
    detector.open()
    assert detector.process(clip_frame(10, SIZE)).shape == (0, 6), "the first frame has nothing to compare to"
    boxes = detector.process(clip_frame(11, SIZE))
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 6
    assert (boxes[:, 4] == 0).all() and ((boxes[:, 5] > 0) & (boxes[:, 5] <= 1)).all()
    found = boxes[:, :4].tolist()
    for true in clip_boxes(11, SIZE).tolist():
        assert max(overlap(box, true) for box in found) > 0.5, f"no box over the shape at {true}: {found}"


def test_motion_detector_with_nb_tasks_compares_with_the_frame_it_saw_last() -> None:
    # One of two workers sees frames 10, 12, 14: it differences 14 against 12.
    detector = MotionDetector(nb_tasks=2)
    for index in (10, 12):
        detector.process(clip_frame(index, SIZE))
    found = detector.process(clip_frame(14, SIZE))[:, :4].tolist()
    for true in clip_boxes(14, SIZE).tolist():
        assert max(overlap(box, true) for box in found) > 0.5


def test_motion_detector_sees_nothing_in_a_still_scene_and_resets_on_open() -> None:
    detector = MotionDetector()
    frame = clip_frame(3, SIZE)
    detector.process(frame)
    assert detector.process(frame.copy()).shape == (0, 6)
    detector.open()
    assert detector.process(clip_frame(20, SIZE)).shape == (0, 6)
    copy = pickle.loads(pickle.dumps(detector))
    assert copy._previous is None and copy.process(frame).shape == (0, 6)


def test_motion_detector_min_area_and_arguments() -> None:
    detector = MotionDetector(min_area=SIZE[0] * SIZE[1])
    detector.process(clip_frame(0, SIZE))
    assert detector.process(clip_frame(5, SIZE)).shape == (0, 6)
    for kwargs, match in (
        ({"threshold": 300}, "threshold must be below 255"),
        ({"min_area": 0}, "min_area must be >= 1"),
        ({"blur": 4}, "blur must be 0, 1 or an odd kernel size"),
        ({"nb_tasks": 0}, "nb_tasks"),
    ):
        with pytest.raises(NodeConfigError, match=match):
            MotionDetector(**kwargs)


def test_object_detector_is_an_interface() -> None:
    with pytest.raises(NotImplementedError, match="_detect"):
        ObjectDetector().process(gradient())


def test_edge_detector_finds_the_shape_outlines() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    image[20:40, 30:50] = 255
    edges = EdgeDetector(blur=0).process(image)
    assert edges.shape == (60, 80) and edges.dtype == np.uint8
    assert set(np.unique(edges).tolist()) == {0, 255}
    assert edges[20:40, 29:31].any() and edges[19:21, 30:50].any()
    assert not edges[25:35, 35:45].any() and not edges[:10].any()
    with pytest.raises(NodeConfigError, match="high_threshold"):
        EdgeDetector(100, 50)


def test_bounding_box_labels_use_class_names_and_numbers_for_unknown_classes() -> None:
    image = np.zeros((100, 160, 3), np.uint8)
    boxes = [[40, 40, 90, 120, 0, 0.5]]
    unknown = BoundingBoxAnnotator().process(image, boxes)  # COCO has no class 0: labelled "0"
    assert np.array_equal(unknown, BoundingBoxAnnotator(class_labels={0: "0"}).process(image, boxes))
    named = BoundingBoxAnnotator(class_labels={0: "motion"}).process(image, boxes)
    assert not np.array_equal(unknown, named)


# -- keeping the channel axis, box values ------------------------------------------------


@pytest.mark.parametrize("maintain_ratio", [False, True])
def test_resize_keeps_a_single_channel_axis_both_ways(maintain_ratio: bool) -> None:
    image = np.arange(48 * 64, dtype=np.uint8).reshape(48, 64, 1)
    node = ResizeImageTransformer(maintain_ratio)
    assert node.process(image, (24, 32)).shape == (24, 32, 1)  # OpenCV alone gives (24, 32) without the ratio
    assert ResizeImageTransformer(maintain_ratio, size=(32, 24)).process(image).shape == (24, 32, 1)
    assert node.process(image[..., 0], (24, 32)).shape == (24, 32), "a gray (h, w) frame stays (h, w)"
    assert node.process(np.zeros((48, 64, 4), np.uint8), (24, 32)).shape == (24, 32, 4)
    expected = ResizeImageTransformer(maintain_ratio).process(image[..., 0], (24, 32))
    assert np.array_equal(node.process(image, (24, 32))[..., 0], expected)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("column", [0, 3, 4, 5])
def test_bounding_box_annotator_names_itself_and_the_box_for_non_finite_values(bad: float, column: int) -> None:
    # Without the check: a bare ValueError / OverflowError from int(), naming no node.
    boxes = np.array([[10, 10, 30, 30, 1, 0.5], [5, 5, 20, 20, 1, 0.5]])
    boxes[1, column] = bad
    with pytest.raises(ValueError, match=r"BoundingBoxAnnotator 'b': box 1 holds a NaN or infinite value: \[") as info:
        BoundingBoxAnnotator(name="b").process(np.zeros((50, 50, 3), np.uint8), boxes)
    assert str(info.value).count("20.0") == (1 if column == 3 else 2), "the message gives the bad box's values"
    assert ("nan" if np.isnan(bad) else "inf") in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_tracker_annotator_rejects_non_finite_values_too(bad: float) -> None:
    with pytest.raises(ValueError, match="TrackerAnnotator 't': box 0 holds a NaN or infinite value"):
        TrackerAnnotator(name="t").process(np.zeros((50, 50, 3), np.uint8), [[5, 5, 20, bad, 3]])
    with pytest.raises(ValueError, match="TrackerAnnotator 't': box 0 holds"):
        TrackerAnnotator(name="t").process(np.zeros((50, 50, 3), np.uint8), [[5, 5, 20, 20, bad]])


def test_bounding_box_annotator_clips_huge_coordinates_to_the_frame() -> None:
    image = np.zeros((100, 160, 3), np.uint8)
    node = BoundingBoxAnnotator(box_color=(0, 0, 255), text_color=(0, 255, 0), class_labels={1: "x"})
    out = node.process(image, [[40, 30, 1e12, 1e12, 1, 0.9]])
    # The top and left edges are inside the frame: drawn where they are; the others lie outside: not drawn.
    assert out[40, 100].tolist() == [0, 0, 255] and out[70, 30].tolist() == [0, 0, 255]
    assert not out[45:, 35:].any()
    assert np.array_equal(out, node.process(image, [[40, 30, 10_000, 10_000, 1, 0.9]]))
    assert not image.any()
    # Far off on the other side: the right and bottom edges are drawn, the label goes just inside.
    out = node.process(image, [[-1e12, -1e12, 60, 90, 1, 0.9]])
    assert out[60, 40].tolist() == [0, 0, 255] and out[30, 90].tolist() == [0, 0, 255]
    assert not out[:58, :88, 2].any(), "the inside holds no box edge"
    # Entirely outside: nothing is drawn.
    assert not node.process(image, [[1e12, 1e12, 2e12, 2e12, 1, 0.9]]).any()
    tracker = TrackerAnnotator(box_color=(255, 0, 0)).process(image, [[40, 30, 1e12, 1e12, 1e12]])
    assert tracker[40, 100].tolist() == [255, 0, 0]
