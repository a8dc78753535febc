"""videoflow's ``videoflow.processors.vision.detectors``: the ``ObjectDetector`` base class (asyncflow's).

As in videoflow, ``ObjectDetector`` is abstract: a subclass implements
``_detect(im)`` returning an ``(nb_boxes, 6)`` array of
``[ymin, xmin, ymax, xmax, class_index, score]`` in pixels.  videoflow's trained
detectors lived in videoflow-contrib and downloaded their models (from
``BASE_URL_DETECTION``, kept here for imports); asyncflow downloads nothing.
Working detectors in asyncflow: ``asyncflow.processors.vision.onnx.OnnxDetector``
(a local ONNX model file, e.g. a YOLO export), OpenCV's bundled
``HogPeopleDetector`` and ``HaarCascadeDetector``
(``asyncflow.processors.vision.opencv_detectors``), and ``MotionDetector``.
"""

from __future__ import annotations

from asyncflow.processors.vision.detectors import ObjectDetector

__all__ = ["BASE_URL_DETECTION", "ObjectDetector"]

#: Where videoflow downloaded its detection models and label maps (asyncflow does not).
BASE_URL_DETECTION = "https://github.com/videoflow/videoflow-contrib/releases/download/detector_tf/"
