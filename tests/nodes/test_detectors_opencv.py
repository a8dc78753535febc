"""Tests for the detectors whose models ship in the OpenCV wheel (HOG people, Haar cascades), on drawn images."""

from __future__ import annotations

import asyncio
import os
import pickle

import cv2
import numpy as np
import pytest

from asyncflow.consumers import ResultsConsumer
from asyncflow.core import Flow
from asyncflow.core.errors import NodeConfigError
from asyncflow.processors import BoundingBoxAnnotator, HaarCascadeDetector, HogPeopleDetector
from asyncflow.processors.vision.opencv_detectors import bundled_cascades
from asyncflow.producers import IterableProducer


def drawn_person(height: int, size: tuple[int, int] = (400, 400)) -> np.ndarray:
    """A dark stick figure standing on a light background, ``height`` px tall, its head at y=100, centred at x=200."""
    image = np.full((size[1], size[0], 3), 200, np.uint8)
    ink = (40, 40, 40)
    cx, top, u = 200, 100, height / 8
    cv2.circle(image, (cx, int(top + u * 0.6)), int(u * 0.55), ink, -1)
    cv2.rectangle(image, (int(cx - u * 0.9), int(top + u * 1.2)), (int(cx + u * 0.9), int(top + u * 4.2)), ink, -1)
    for side in (-1, 1):
        shoulder, hand = (int(cx + side * u * 0.9), int(top + u * 1.4)), (int(cx + side * u * 1.3), int(top + u * 4))
        cv2.line(image, shoulder, hand, ink, int(u * 0.4))
        hip, foot = (int(cx + side * u * 0.45), int(top + u * 4.1)), (int(cx + side * u * 0.6), int(top + u * 8))
        cv2.line(image, hip, foot, ink, int(u * 0.6))
    blurred: np.ndarray = cv2.GaussianBlur(image, (5, 5), 0)
    return blurred


def drawn_face(size: int) -> np.ndarray:
    """A cartoon face (skin ellipse, brows, eyes, nose, mouth), centred in a (2 size) square."""
    image = np.full((size * 2, size * 2, 3), 40, np.uint8)
    cx = cy = size
    cv2.ellipse(image, (cx, cy), (int(size * 0.38), int(size * 0.5)), 0, 0, 360, (150, 180, 220), -1)
    for side in (-1, 1):
        ex, ey = cx + side * int(size * 0.16), cy - int(size * 0.1)
        cv2.ellipse(image, (ex, ey), (int(size * 0.08), int(size * 0.04)), 0, 0, 360, (30, 30, 30), -1)
        brow = ey - int(size * 0.09)
        cv2.line(image, (ex - int(size * 0.1), brow), (ex + int(size * 0.1), brow), (40, 40, 60), int(size * 0.03))
    cv2.line(image, (cx, cy - int(size * 0.02)), (cx, cy + int(size * 0.12)), (110, 130, 170), int(size * 0.04))
    cv2.ellipse(image, (cx, cy + int(size * 0.25)), (int(size * 0.14), int(size * 0.04)), 0, 0, 360, (60, 60, 140), -1)
    blurred: np.ndarray = cv2.GaussianBlur(image, (7, 7), 0)
    return blurred


def check_layout(out: np.ndarray, shape: tuple[int, ...]) -> None:
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == 6
    assert (out[:, 0] >= 0).all() and (out[:, 2] <= shape[0]).all() and (out[:, 0] < out[:, 2]).all()
    assert (out[:, 1] >= 0).all() and (out[:, 3] <= shape[1]).all() and (out[:, 1] < out[:, 3]).all()
    assert ((out[:, 5] > 0) & (out[:, 5] <= 1)).all()


def covers(box: np.ndarray, ymin: float, xmin: float, ymax: float, xmax: float, slack: float) -> bool:
    return bool(
        box[0] <= ymin + slack and box[1] <= xmin + slack and box[2] >= ymax - slack and box[3] >= xmax - slack
    )


# -- HOG people -------------------------------------------------------------------------------


@pytest.mark.parametrize("height", [140, 200])
def test_hog_finds_a_drawn_person(height: int) -> None:
    node = HogPeopleDetector()
    node.open()
    image = drawn_person(height)
    out = node.process(image)
    check_layout(out, image.shape)
    assert len(out) == 1
    assert out[0, 4] == 1, "COCO's person"
    assert out[0, 5] > 0.5, "a positive SVM margin"
    assert covers(out[0], 100, 200 - height / 6, 100 + height, 200 + height / 6, slack=height * 0.15)
    assert BoundingBoxAnnotator().labels[int(out[0, 4])] == "person"


def test_hog_on_empty_images_finds_nothing() -> None:
    node = HogPeopleDetector()
    node.open()
    blank, white, small = np.zeros((240, 320, 3), np.uint8), np.full((240, 320), 255, np.uint8), np.zeros((100, 50, 3))
    for image in (blank, white, small.astype(np.uint8)):
        out = node.process(image)
        assert out.shape == (0, 6) and out.dtype == np.float32


def test_hog_takes_gray_and_bgra_frames() -> None:
    node = HogPeopleDetector()
    person = drawn_person(180)
    gray = node.process(cv2.cvtColor(person, cv2.COLOR_BGR2GRAY))  # opened on first use
    bgra = node.process(cv2.cvtColor(person, cv2.COLOR_BGR2BGRA))
    assert len(gray) == 1 and len(bgra) == 1
    np.testing.assert_array_equal(bgra, node.process(person))


def test_hog_checks() -> None:
    with pytest.raises(NodeConfigError, match="HogPeopleDetector 'h': win_stride must be a multiple of 8"):
        HogPeopleDetector(win_stride=12, name="h")
    with pytest.raises(NodeConfigError, match="scale must be > 1"):
        HogPeopleDetector(scale=1.0)
    with pytest.raises(TypeError, match="HogPeopleDetector 'h': needs uint8 frames"):
        HogPeopleDetector(name="h").process(np.zeros((200, 100, 3), np.float32))
    node = HogPeopleDetector(group_threshold=0, nb_tasks=2)
    node.open()
    raw = node.process(drawn_person(180))
    assert len(raw) > 1, "without grouping every window that fired is a box"
    copy = pickle.loads(pickle.dumps(node))
    assert copy._hog is None and copy.group_threshold == 0 and copy.nb_tasks == 2


# -- Haar cascades ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 160])
def test_haar_finds_a_drawn_face(size: int) -> None:
    node = HaarCascadeDetector(min_neighbors=3)
    node.open()
    image = drawn_face(size)
    out = node.process(image)
    check_layout(out, image.shape)
    assert len(out) == 1
    assert out[0, 4:].tolist() == [0, 1], "class 0, score 1: a cascade gives no confidence"
    centre = ((out[0, 0] + out[0, 2]) / 2, (out[0, 1] + out[0, 3]) / 2)
    assert centre == pytest.approx((size, size), abs=size * 0.1)


def test_haar_on_empty_images_finds_nothing() -> None:
    node = HaarCascadeDetector()
    node.open()
    blank, gray, tiny = np.zeros((240, 320, 3), np.uint8), np.full((240, 320), 128, np.uint8), np.zeros((10, 10, 4))
    for image in (blank, gray, tiny.astype(np.uint8)):
        out = node.process(image)
        assert out.shape == (0, 6) and out.dtype == np.float32


def test_haar_cascades_by_name_or_path(tmp_path: str) -> None:
    names = bundled_cascades()
    assert "haarcascade_frontalface_default.xml" in names and "haarcascade_fullbody.xml" in names
    node = HaarCascadeDetector("haarcascade_frontalface_alt2.xml", min_neighbors=3)
    assert os.path.isabs(node.cascade)
    assert len(node.process(drawn_face(120))) == 1
    by_path = HaarCascadeDetector(node.cascade, min_size=(40, 40), max_size=(400, 400), equalize=False)
    assert len(by_path.process(drawn_face(120))) == 1
    with pytest.raises(NodeConfigError, match=r"HaarCascadeDetector 'f': cascade 'nope\.xml' is neither a file nor"):
        HaarCascadeDetector("nope.xml", name="f")
    broken = os.path.join(tmp_path, "broken.xml")
    with open(broken, "w", encoding="utf-8") as file:
        file.write("<opencv_storage></opencv_storage>")
    with pytest.raises(ValueError, match=r"HaarCascadeDetector 'f': OpenCV cannot load .*broken\.xml"):
        HaarCascadeDetector(broken, name="f").open()
    copy = pickle.loads(pickle.dumps(node))
    assert copy._classifier is None and copy.cascade == node.cascade


# -- in a flow ----------------------------------------------------------------------------------


async def test_both_in_a_flow() -> None:
    frames = [drawn_person(180), np.zeros((240, 320, 3), np.uint8)]
    source = IterableProducer(frames)
    people = HogPeopleDetector()(source)
    faces = HaarCascadeDetector()(source)
    people_sink, faces_sink = ResultsConsumer()(people), ResultsConsumer()(faces)
    flow = Flow([source], [people_sink, faces_sink])
    run = asyncio.create_task(flow.run())
    got_people = [item async for item in flow.results(people_sink)]
    got_faces = [item async for item in flow.results(faces_sink)]
    await asyncio.wait_for(run, 60)
    assert [len(d) for d in got_people] == [1, 0]
    assert [d.shape for d in got_faces] == [(0, 6), (0, 6)]
