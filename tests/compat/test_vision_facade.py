"""processors.vision's modules: segmentation, the segmentation annotator, trackers, detectors, and utils'
image helpers (they need the video extra: OpenCV, numpy)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("cv2")

from asyncflow.compat.videoflow.processors import vision  # noqa: E402
from asyncflow.compat.videoflow.processors.vision.annotators import SegmenterAnnotator  # noqa: E402
from asyncflow.compat.videoflow.processors.vision.segmentation import Segmenter  # noqa: E402
from asyncflow.compat.videoflow.utils import parsers, transforms  # noqa: E402
from asyncflow.processors.onetask import OneTaskProcessorNode  # noqa: E402

LABELS = 'item {\n  id: 1\n  display_name: "person"\n}\nitem {\n  id: 3\n  display_name: "car"\n}\n'


class HalfMask(Segmenter):
    """A segmenter that finds one object of class 2 in the left half of each frame."""

    def _segment(self, im: Any) -> Any:
        mask = np.zeros(im.shape[:2], dtype=np.float32)
        mask[:, : im.shape[1] // 2] = 1
        return mask[None], np.array([2]), np.array([0.9])


def test_segmenter_is_videoflow_s_abstract_base() -> None:
    with pytest.raises(NotImplementedError, match="videoflow-contrib"):
        Segmenter().process(np.zeros((2, 2, 3), np.uint8))
    masks, classes, scores = HalfMask().process(np.zeros((2, 4, 3), np.uint8))
    assert masks.shape == (1, 2, 4) and classes.tolist() == [2] and scores.tolist() == [pytest.approx(0.9)]


def test_segmenter_annotator_blends_the_masks(tmp_path: Path) -> None:
    im = np.full((2, 4, 3), 100, np.uint8)
    annotated = SegmenterAnnotator(transparency=0.5).process(im, HalfMask().process(im))
    # Class 2's color is (0, 0, 255): half of it over half of the image.
    assert annotated[:, :2].tolist() == [[[50, 50, 177]] * 2] * 2
    assert annotated[:, 2:].tolist() == [[[100, 100, 100]] * 2] * 2
    assert im.tolist() == np.full((2, 4, 3), 100).tolist(), "the input frame is left alone"


def test_segmenter_annotator_draws_what_videoflow_s_drew(tmp_path: Path) -> None:
    theirs = pytest.importorskip("videoflow.processors.vision.annotators")
    labels = tmp_path / "labels.pbtxt"
    labels.write_text(LABELS)
    rng = np.random.default_rng(7)
    im = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    masks = (rng.random((3, 6, 5)) > 0.5).astype(np.float32)
    masks[2] *= 0.25  # soft values are blended as they are
    annotations = [masks, np.array([0, 5, 13]), np.array([0.9, 0.8, 0.7])]
    ours = SegmenterAnnotator(class_labels_path=labels, transparency=0.3)
    reference = theirs.SegmenterAnnotator(class_labels_path=str(labels), transparency=0.3)
    assert ours.class_labels == {1: "person", 3: "car"}
    assert ours.process(im, annotations).tolist() == reference.process(im, annotations).tolist()


def test_segmenter_annotator_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="class_labels_dataset must be one of"):
        SegmenterAnnotator(class_labels_dataset="imagenet")
    with pytest.raises(ValueError, match="cannot be None"):
        SegmenterAnnotator(class_labels_dataset=None)
    with pytest.raises(ValueError, match="transparency"):
        SegmenterAnnotator(transparency=2)
    assert SegmenterAnnotator().class_labels[1] == "person", "COCO's labels are bundled"
    assert SegmenterAnnotator(class_labels_dataset="kitti").class_labels == {}, "not needed to draw"


def test_trackers_are_asyncflow_s() -> None:
    real = pytest.importorskip("asyncflow.processors.vision.trackers")
    from asyncflow.compat.videoflow.processors.vision.trackers import (
        BoundingBoxTracker,
        KalmanFilterBoundingBoxTracker,
    )

    assert BoundingBoxTracker is real.BoundingBoxTracker
    assert KalmanFilterBoundingBoxTracker is real.KalmanFilterBoundingBoxTracker
    assert issubclass(BoundingBoxTracker, OneTaskProcessorNode)
    assert vision.KalmanFilterBoundingBoxTracker is KalmanFilterBoundingBoxTracker


def test_the_vision_package_offers_each_submodule_s_names() -> None:
    for name in vision.__all__:
        if name.endswith("Tracker") and importlib.util.find_spec("asyncflow.processors.vision.trackers") is None:
            continue
        module = importlib.import_module(f"{vision.__name__}.{vision._WHERE[name]}")
        assert getattr(vision, name) is getattr(module, name)
    assert vision.pose.__all__ == [] and vision.counters.__all__ == []
    with pytest.raises(AttributeError):
        vision.TensorflowObjectDetector  # noqa: B018


def test_detectors_keep_the_base_and_the_download_url() -> None:
    from asyncflow.compat.videoflow.processors.vision import detectors
    from asyncflow.processors.vision.detectors import ObjectDetector

    assert detectors.ObjectDetector is ObjectDetector
    assert detectors.BASE_URL_DETECTION.startswith("https://github.com/videoflow/videoflow-contrib/")


def test_parse_label_map_and_resize_add_padding(tmp_path: Path) -> None:
    labels = tmp_path / "labels.pbtxt"
    labels.write_text(LABELS)
    assert parsers.parse_label_map(labels) == {1: "person", 3: "car"}
    im = np.full((10, 20, 3), 255, np.uint8)
    out = transforms.resize_add_padding(im, 20, 20)
    assert out.shape == (20, 20, 3)
    assert out[:10].min() == 255 and out[10:].max() == 0, "scaled to fit, padded at the bottom"
