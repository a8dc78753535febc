"""``OnnxDetector``: YOLOv8 / YOLO11 detection models exported to ONNX, run with onnxruntime.

Needs the ``onnx`` extra (``pip install 'asyncflow[onnx]'``: onnxruntime, on top of
the ``video`` extra); for NVIDIA GPUs install ``asyncflow[onnx-gpu]`` instead
(onnxruntime-gpu with NVIDIA's CUDA and cuDNN wheels; the two onnxruntime packages
cannot be installed side by side, and the GPU one needs an NVIDIA driver recent
enough for the CUDA major version it was built with).
onnxruntime is imported when the node opens, in its own process: building a flow
with an ``OnnxDetector`` needs neither onnxruntime nor the model file.

The model is what Ultralytics writes with ``yolo export format=onnx`` (without
``nms=True``) for a detection model:

- one input ``[batch, 3, height, width]``, float (float16 for ``half=True``), RGB,
  values in 0..1;
- one output ``[batch, 4 + C, N]``: for each of the N candidate boxes its centre
  ``cx, cy``, width and height in pixels of the model's input, then its C class
  scores.

The frame is letterboxed as Ultralytics does (scaled to fit with its aspect
ratio kept, centred, gray 114 padding, ``cv2.INTER_LINEAR``), turned from BGR to
RGB and scaled to 0..1; each candidate keeps its best class; candidates scoring
more than ``confidence_threshold`` go through class-aware non-maximum suppression
(a box is dropped when its IoU with a better box of the same class exceeds
``iou_threshold``), and at most ``max_detections`` boxes, best first, are mapped
back to the frame's pixels, clipped to the frame, and emitted in the detectors'
layout.  These are the rules and defaults of Ultralytics' own ``predict``.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from asyncflow.core.errors import NodeConfigError
from asyncflow.core.node import DeviceType, OnError
from asyncflow.video._common import Image, as_image, check_int, check_path, check_real

from .annotators import COCO_LABELS
from .detectors import Detections, ObjectDetector, no_detections

__all__ = ["COCO80_TO_91", "OnnxDetector", "letterbox", "non_max_suppression"]

logger = logging.getLogger(__name__)

#: Ultralytics' 80 COCO classes (index 0..79) as the ids of the COCO label map that
#: ``BoundingBoxAnnotator`` bundles (1..90, with gaps): ``COCO80_TO_91[0] == 1`` (person).
COCO80_TO_91: tuple[int, ...] = tuple(sorted(COCO_LABELS))

#: Ultralytics' letterbox padding value (gray).
PAD_VALUE = 114
#: At most this many candidates, best first, enter the suppression (Ultralytics' ``max_nms``).
MAX_CANDIDATES = 30_000
#: Input size of a model whose height and width are dynamic, when neither
#: ``input_size`` nor the model's metadata give one (Ultralytics' default ``imgsz``).
DEFAULT_INPUT_SIZE = 640

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

ClassIds = Literal["coco"] | Sequence[int] | None


def letterbox(im: Image, size: tuple[int, int]) -> tuple[Image, float, tuple[int, int]]:
    """Fit ``im`` into ``size`` (width, height) as Ultralytics' ``LetterBox`` does.

    The frame is scaled by ``ratio = min(height / h, width / w)`` (up or down) with
    ``cv2.INTER_LINEAR`` to ``round(w * ratio) x round(h * ratio)`` and centred on a
    gray (114) canvas; an odd padding puts its extra pixel at the bottom or right.
    Returns the canvas, ``ratio`` and the ``(left, top)`` padding: a point ``(x, y)``
    of the canvas is ``((x - left) / ratio, (y - top) / ratio)`` in the frame.
    """
    height, width = im.shape[:2]
    target_w, target_h = size
    ratio = min(target_h / height, target_w / width)
    new_w = min(target_w, max(1, round(width * ratio)))
    new_h = min(target_h, max(1, round(height * ratio)))
    if (new_w, new_h) != (width, height):
        im = cv2.resize(im, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_w, pad_h = (target_w - new_w) / 2, (target_h - new_h) / 2
    top, bottom = round(pad_h - 0.1), round(pad_h + 0.1)
    left, right = round(pad_w - 0.1), round(pad_w + 0.1)
    value = (PAD_VALUE,) * (im.shape[2] if im.ndim == 3 else 1)
    padded: Image = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    return padded, ratio, (left, top)


def non_max_suppression(
    boxes: npt.NDArray[np.floating[Any]],
    scores: npt.NDArray[np.floating[Any]],
    classes: npt.NDArray[np.integer[Any]],
    iou_threshold: float,
    max_detections: int,
) -> npt.NDArray[np.intp]:
    """Greedy class-aware NMS: the indices of the boxes kept, best score first.

    ``boxes`` are ``(n, 4)`` ``[x1, y1, x2, y2]``.  Going from the best score down, a
    box is kept unless its IoU with a kept box of the same class is above
    ``iou_threshold`` (torchvision's ``batched_nms``, which Ultralytics uses); at
    most ``max_detections`` are kept.  Ties keep the earlier box.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, k].astype(np.float64) for k in range(4))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        width = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        height = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = width * height
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[(iou <= iou_threshold) | (classes[rest] != classes[best])]
    return np.asarray(keep, dtype=np.intp)


def _import_onnxruntime(owner: str) -> Any:
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"{owner} needs onnxruntime: install it with pip install 'asyncflow[onnx]' "
            "(or 'asyncflow[onnx-gpu]' for NVIDIA GPUs)"
        ) from exc
    return onnxruntime


def _dim(value: object) -> int | None:
    """A static dimension of an onnxruntime shape, ``None`` when it is symbolic or unknown."""
    return value if isinstance(value, int) and value > 0 else None


def _check_class_ids(owner: str, class_ids: object) -> tuple[int, ...] | Literal["coco"] | None:
    if class_ids is None:
        return None
    if class_ids == "coco":
        return "coco"
    if isinstance(class_ids, str) or not isinstance(class_ids, Sequence):
        raise NodeConfigError(
            f"{owner}: class_ids must be 'coco', None or a sequence of ints (one per model class), got {class_ids!r}"
        )
    return tuple(check_int(owner, f"class_ids[{i}]", value, 0) for i, value in enumerate(class_ids))


def _check_input_size(owner: str, input_size: object) -> tuple[int, int] | None:
    if input_size is None:
        return None
    if isinstance(input_size, (tuple, list)) and len(input_size) == 2:
        return check_int(owner, "input_size[0] (width)", input_size[0], 1), check_int(
            owner, "input_size[1] (height)", input_size[1], 1
        )
    size = check_int(owner, "input_size", input_size, 1)
    return size, size


class OnnxDetector(ObjectDetector):
    """Detect objects with a YOLOv8 / YOLO11 detection model exported to ONNX (see the module docstring).

    ``process(im)`` takes a ``uint8`` frame (BGR, BGRA or gray, any size) and
    returns an ``(nb_boxes, 6)`` ``float32`` array of
    ``[ymin, xmin, ymax, xmax, class_index, score]`` in pixels of the frame, best
    score first (``(0, 6)`` when nothing is found).

    - ``model_path``: the ``.onnx`` file, loaded in ``open()`` (in the node's own
      process).  A missing file, a file onnxruntime cannot load, or a model whose
      input or output is not the layout above raise naming the node.
    - ``confidence_threshold`` (0.25) and ``iou_threshold`` (0.45): Ultralytics'
      defaults; ``max_detections`` (300) caps the boxes per frame.
    - ``class_ids``: what goes in the ``class_index`` column for the model's class
      ``i``.  ``"coco"`` (the default) maps Ultralytics' 80 COCO classes to the
      COCO label-map ids ``BoundingBoxAnnotator`` names (``COCO80_TO_91``:
      0 -> 1 "person", 2 -> 3 "car"...) and needs an 80-class model; ``None``
      keeps the model's own index; a sequence gives one id per class.
    - ``input_size``: an int or ``(width, height)``, for models exported with a
      dynamic height and width (else the model's metadata ``imgsz``, else 640);
      a model with a fixed size must be given that size or nothing.
    - Batching: the engine hands the node blocks of frames (``process_batch``).
      When the model's batch axis is dynamic a block is run as one
      ``session.run`` of up to ``max_batch`` frames (a larger block is split); a
      model exported for a fixed batch of B runs blocks of B (the last one padded);
      a batch-1 model runs each frame alone.
    - ``device_type="gpu"`` runs on onnxruntime's ``CUDAExecutionProvider`` on the
      task's GPU (the engine gives each task one through ``CUDA_VISIBLE_DEVICES``).
      When the task has no GPU (none left for it), onnxruntime has no CUDA provider
      (plain ``onnxruntime`` installed rather than ``onnxruntime-gpu``) or CUDA
      fails to start, the node runs on the CPU with a warning if
      ``cpu_fallback=True`` (the default) and fails naming itself if
      ``cpu_fallback=False``: the engine's rules for GPU tasks.  The provider and
      device in use are logged (INFO; WARNING for a fallback) and kept in
      ``provider`` and ``device``.
    - ``intra_op_num_threads``: onnxruntime's threads per task (``None``: its
      default, one per core).  Idle threads do not spin (they would take the CPU
      from the flow's other processes).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        confidence_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        nb_tasks: int = 1,
        device_type: DeviceType = "cpu",
        *,
        class_ids: ClassIds = "coco",
        input_size: int | tuple[int, int] | None = None,
        max_detections: int = 300,
        max_batch: int = 16,
        intra_op_num_threads: int | None = None,
        cpu_fallback: bool = True,
        name: str | None = None,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(
            nb_tasks, device_type, name=name, ordered=ordered, on_error=on_error, cpu_fallback=cpu_fallback
        )
        owner = self.describe()
        self.model_path = check_path(owner, "model_path", model_path)
        self.confidence_threshold = check_real(owner, "confidence_threshold", confidence_threshold, 0)
        self.iou_threshold = check_real(owner, "iou_threshold", iou_threshold, 0)
        if self.confidence_threshold > 1 or self.iou_threshold > 1:
            raise NodeConfigError(
                f"{owner}: confidence_threshold and iou_threshold must be between 0 and 1, "
                f"got {confidence_threshold} and {iou_threshold}"
            )
        self.class_ids = _check_class_ids(owner, class_ids)
        self.input_size = _check_input_size(owner, input_size)
        self.max_detections = check_int(owner, "max_detections", max_detections, 1)
        self.max_batch = check_int(owner, "max_batch", max_batch, 1)
        self.intra_op_num_threads = (
            None if intra_op_num_threads is None else check_int(owner, "intra_op_num_threads", intra_op_num_threads, 1)
        )
        #: After ``open()``: the execution provider in use, and the device it runs on.
        self.provider: str | None = None
        self.device: str | None = None
        self._reset()

    def _reset(self) -> None:
        self._session: Any = None
        self._input_name = ""
        self._input_dtype: type[np.floating[Any]] = np.float32
        self._size = (0, 0)  # (width, height) of the model's input
        self._batch: int | None = None  # a fixed batch size, None when dynamic
        self._nb_classes: int | None = None
        self._class_map: npt.NDArray[np.float32] | None = None

    # -- loading ----------------------------------------------------------------------
    def open(self) -> None:
        """Load the model in an onnxruntime session on the provider ``device_type`` asks for."""
        owner = self.describe()
        ort = _import_onnxruntime(owner)
        path = self.model_path
        if not os.path.exists(path):
            raise FileNotFoundError(f"{owner}: model_path {path!r} does not exist")
        if not os.path.isfile(path):
            raise IsADirectoryError(f"{owner}: model_path {path!r} is not a file")
        providers, device = self._providers(ort)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: our own log says what runs where
        if self.intra_op_num_threads is not None:
            options.intra_op_num_threads = self.intra_op_num_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(path, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime's own exception types (InvalidProtobuf, Fail...)
            raise ValueError(f"{owner}: cannot load {path!r} as an ONNX model: {exc}") from exc
        used = list(session.get_providers())
        if device != "cpu" and CUDA not in used:
            self._no_gpu(f"onnxruntime could not start CUDA on GPU {device} (session providers: {used})")
            device = "cpu"
        self._inspect(session)
        self._session = session
        self.provider = used[0] if device != "cpu" else CPU
        self.device = "cpu" if device == "cpu" else f"cuda:0 (CUDA_VISIBLE_DEVICES={device})"
        logger.info(
            "%s: %s on %s (%s), input %dx%d, batch %s",
            owner, os.path.basename(path), self.provider, self.device, *self._size, self._batch or "dynamic",
        )

    def _providers(self, ort: Any) -> tuple[list[Any], str]:
        """The providers to ask onnxruntime for, and the GPU id they use (``"cpu"``: none)."""
        if self.device_type != "gpu":
            return [CPU], "cpu"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            ids = [part.strip() for part in visible.split(",")]
            if not ids or not ids[0] or ids[0].startswith("-"):
                self._no_gpu("the task has no GPU (CUDA_VISIBLE_DEVICES is empty: the engine had none left for it)")
                return [CPU], "cpu"
            device = ids[0]
        else:
            device = "0"
        available = list(ort.get_available_providers())
        if CUDA not in available:
            self._no_gpu(
                f"this onnxruntime has no {CUDA} (it has {', '.join(available)}): "
                "install onnxruntime-gpu (pip install 'asyncflow[onnx-gpu]') in place of onnxruntime"
            )
            return [CPU], "cpu"
        _preload_cuda_libraries(ort)
        return [(CUDA, {"device_id": 0}), CPU], device

    def _no_gpu(self, why: str) -> None:
        """A GPU task that cannot have one: a warning (``cpu_fallback``) or an error naming the node."""
        if not self.cpu_fallback:
            raise RuntimeError(f"{self.describe()} needs a GPU and {why}; or build it with cpu_fallback=True")
        logger.warning("%s: device_type='gpu' but %s: running on the CPU (cpu_fallback=True)", self.describe(), why)

    def _inspect(self, session: Any) -> None:
        """Check the model's input and output against the YOLO layout; keep what ``process`` needs."""
        owner = self.describe()
        path = self.model_path
        expected_in = "one image input [batch, 3, height, width]"
        expected_out = "one output [batch, 4 + classes, boxes] (an Ultralytics YOLOv8/YOLO11 detection export)"
        inputs, outputs = session.get_inputs(), session.get_outputs()
        metadata = dict(session.get_modelmeta().custom_metadata_map or {})
        task = metadata.get("task")
        if task is not None and task != "detect":
            raise ValueError(f"{owner}: {path!r} is a {task!r} model; OnnxDetector runs detection models")
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or _dim(inputs[0].shape[1]) not in (3, None):
            described = ", ".join(f"{i.name} {list(i.shape)}" for i in inputs)
            raise ValueError(f"{owner}: {path!r} has input(s) {described}; expected {expected_in}")
        model_input = inputs[0]
        if model_input.type not in ("tensor(float)", "tensor(float16)"):
            raise ValueError(f"{owner}: {path!r} takes {model_input.type}; expected float or float16 images")
        if len(outputs) != 1 or (outputs[0].shape is not None and len(outputs[0].shape) not in (0, 3)):
            described = ", ".join(f"{o.name} {list(o.shape or [])}" for o in outputs)
            raise ValueError(f"{owner}: {path!r} has output(s) {described}; expected {expected_out}")
        self._input_name = model_input.name
        self._input_dtype = np.float16 if model_input.type == "tensor(float16)" else np.float32
        self._batch = _dim(model_input.shape[0])
        height, width = _dim(model_input.shape[2]), _dim(model_input.shape[3])
        if height is not None and width is not None:
            if self.input_size is not None and self.input_size != (width, height):
                raise ValueError(
                    f"{owner}: {path!r} takes {width}x{height} images (width x height), "
                    f"input_size says {self.input_size[0]}x{self.input_size[1]}"
                )
            self._size = (width, height)
        else:
            self._size = self.input_size or _metadata_size(metadata) or (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
        rows = _dim(outputs[0].shape[1]) if outputs[0].shape and len(outputs[0].shape) == 3 else None
        self._nb_classes = None if rows is None else rows - 4
        if rows is not None and rows < 5:
            raise ValueError(
                f"{owner}: the output of {path!r} is {list(outputs[0].shape)}, fewer than 4 + 1 rows; "
                f"expected {expected_out}"
            )
        if self._nb_classes is not None:
            self._class_map = self._map_classes(self._nb_classes)

    def _map_classes(self, nb_classes: int) -> npt.NDArray[np.float32]:
        """The ``class_index`` column's value for each of the model's classes."""
        owner = self.describe()
        if self.class_ids is None:
            return np.arange(nb_classes, dtype=np.float32)
        if self.class_ids == "coco":
            if nb_classes != len(COCO80_TO_91):
                raise ValueError(
                    f"{owner}: the model has {nb_classes} classes, and class_ids='coco' maps the 80 COCO classes: "
                    "give class_ids=None (the model's own indices) or one id per class"
                )
            return np.asarray(COCO80_TO_91, dtype=np.float32)
        if len(self.class_ids) != nb_classes:
            raise ValueError(f"{owner}: the model has {nb_classes} classes, class_ids gives {len(self.class_ids)}")
        return np.asarray(self.class_ids, dtype=np.float32)

    def close(self) -> None:
        """Release the session."""
        self._reset()

    # -- running ----------------------------------------------------------------------
    def _detect(self, im: Image) -> Detections:
        return self._run([im])[0]

    def process_batch(self, ims: list[Any]) -> list[Detections]:
        """Detect in a block of frames: one ``session.run`` per ``max_batch`` frames when the batch axis allows."""
        owner = self.describe()
        return self._run([as_image(owner, im) for im in ims])

    def _run(self, ims: list[Image]) -> list[Detections]:
        if self._session is None:
            raise RuntimeError(f"{self.describe()} is not open: open() loads the model (the engine calls it)")
        step = self._batch or self.max_batch
        results: list[Detections] = []
        for start in range(0, len(ims), step):
            results.extend(self._run_block(ims[start : start + step]))
        return results

    def _run_block(self, ims: list[Image]) -> list[Detections]:
        width, height = self._size
        rows = self._batch or len(ims)
        blob = np.zeros((rows, 3, height, width), dtype=np.float32)
        placements = []
        for index, im in enumerate(ims):
            padded, ratio, pad = letterbox(self._bgr(im), self._size)
            blob[index] = padded[:, :, ::-1].transpose(2, 0, 1)  # BGR -> RGB, HWC -> CHW
            placements.append((ratio, pad, im.shape[:2]))
        blob *= np.float32(1 / 255)
        output = self._session.run(None, {self._input_name: blob.astype(self._input_dtype, copy=False)})[0]
        output = np.asarray(output)
        self._check_output(output, rows)
        return [self._decode(output[i], *placements[i]) for i in range(len(ims))]

    def _bgr(self, im: Image) -> Image:
        if im.dtype != np.uint8:
            raise TypeError(f"{self.describe()}: needs uint8 frames, got {im.dtype}")
        if im.ndim == 2 or im.shape[2] == 1:
            converted: Image = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
            return converted
        return im[..., :3] if im.shape[2] == 4 else im

    def _check_output(self, output: npt.NDArray[Any], rows: int) -> None:
        if output.ndim != 3 or output.shape[0] != rows or output.shape[1] < 5:
            raise ValueError(
                f"{self.describe()}: the model's output has shape {list(output.shape)} for a batch of {rows}; "
                "expected [batch, 4 + classes, boxes] (an Ultralytics YOLOv8/YOLO11 detection export)"
            )
        nb_classes = output.shape[1] - 4
        if self._class_map is None or self._nb_classes != nb_classes:
            self._class_map = self._map_classes(nb_classes)
            self._nb_classes = nb_classes

    def _decode(
        self, prediction: npt.NDArray[Any], ratio: float, pad: tuple[int, int], shape: tuple[int, int]
    ) -> Detections:
        """One image's ``[4 + C, N]`` output as boxes in the frame: threshold, NMS, map back, clip."""
        if prediction.shape[1] == 0:
            return no_detections()
        scores_all = prediction[4:]
        classes = scores_all.argmax(axis=0)
        scores = np.take_along_axis(scores_all, classes[None, :], axis=0)[0].astype(np.float32)
        candidates = np.flatnonzero(scores > self.confidence_threshold)
        if candidates.size == 0:
            return no_detections()
        if candidates.size > MAX_CANDIDATES:
            candidates = candidates[np.argsort(-scores[candidates], kind="stable")[:MAX_CANDIDATES]]
        cx, cy, w, h = (prediction[k, candidates].astype(np.float32) for k in range(4))
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        if not np.isfinite(boxes).all():
            raise ValueError(f"{self.describe()}: the model's output holds NaN or infinite box coordinates")
        keep = non_max_suppression(
            boxes, scores[candidates], classes[candidates], self.iou_threshold, self.max_detections
        )
        kept = candidates[keep]
        boxes = boxes[keep]
        left, top = pad
        height, width = shape
        out = np.empty((keep.size, 6), dtype=np.float32)
        out[:, 0] = np.clip((boxes[:, 1] - top) / ratio, 0, height)
        out[:, 1] = np.clip((boxes[:, 0] - left) / ratio, 0, width)
        out[:, 2] = np.clip((boxes[:, 3] - top) / ratio, 0, height)
        out[:, 3] = np.clip((boxes[:, 2] - left) / ratio, 0, width)
        assert self._class_map is not None
        out[:, 4] = self._class_map[classes[kept]]
        out[:, 5] = scores[kept]
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_session"] = None  # a run-time resource, loaded again by open() in the new process
        return state


def _preload_cuda_libraries(ort: Any) -> None:
    """Load the CUDA and cuDNN libraries of NVIDIA's pip packages (``onnxruntime-gpu[cuda,cudnn]``), when there.

    onnxruntime finds a system-wide CUDA by itself; the libraries of the ``nvidia-*``
    wheels it finds only once ``onnxruntime.preload_dlls()`` (1.21+) has loaded them.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None or importlib.util.find_spec("nvidia") is None:
        return
    try:
        preload()
    except Exception as exc:  # a failed preload only means CUDA may not start: open() then says so
        logger.debug("onnxruntime.preload_dlls() failed: %s", exc)


def _metadata_size(metadata: dict[str, str]) -> tuple[int, int] | None:
    """Ultralytics' ``imgsz`` metadata (``"[640, 640]"``, height then width) as ``(width, height)``."""
    text = metadata.get("imgsz")
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, int) and value > 0:
        return value, value
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and v > 0 for v in value)
    ):
        return int(value[1]), int(value[0])
    return None
