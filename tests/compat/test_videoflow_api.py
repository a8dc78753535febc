# ruff: noqa: E501 - the tables keep one videoflow signature a line
"""The facade offers every module and public name of videoflow 0.2.10, with videoflow's signatures and defaults.

The tables below were taken from videoflow 0.2.10's source (each module's own
classes, functions and constants, and what its packages re-export); when
videoflow is installed, ``test_the_tables_are_videoflow_s`` checks them against it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import warnings
from typing import Any

import pytest

from asyncflow.compat.videoflow._unavailable import NotAvailableError, Unavailable

REQUIRED = inspect.Parameter.empty

#: videoflow 0.2.10: each module, and the public names it defines (or, for a package, re-exports).
MODULES: dict[str, list[str]] = {
    "videoflow": [],
    "videoflow.consumers": ["CommandlineConsumer", "VideofileWriter", "VoidConsumer"],
    "videoflow.consumers.basic": ["CommandlineConsumer", "FileAppenderConsumer", "VoidConsumer", "WebhookConsumer"],
    "videoflow.consumers.video": ["VideofileWriter"],
    "videoflow.core": [
        "ConsumerNode", "ConsumerTask", "Flow", "FunctionProcessorNode", "LOGGING_LEVEL", "Node", "ProcessorNode",
        "ProcessorTask", "ProducerNode", "ProducerTask", "Task",
    ],
    "videoflow.core.bottlenecks": ["Accountant", "MetadataConsumer", "Metric", "MetricMessage", "MetricsLogger"],
    "videoflow.core.constants": [
        "BATCH", "CPU", "DEVICE_TYPES", "FLOW_TYPES", "GPU", "LOGGING_LEVEL", "REALTIME", "STOP_SIGNAL",
    ],
    "videoflow.core.engine": ["ExecutionEngine", "Messenger"],
    "videoflow.core.flow": ["Flow"],
    "videoflow.core.graph": ["GraphEngine"],
    "videoflow.core.node": [
        "ConsumerNode", "FunctionProcessorNode", "Leaf", "ModuleNode", "Node", "OneTaskProcessorNode",
        "ProcessorNode", "ProducerNode", "TaskModuleNode",
    ],
    "videoflow.core.processor": ["Processor"],
    "videoflow.core.task": [
        "ConsumerTask", "MultiprocessingOutputTask", "MultiprocessingProcessorTask", "MultiprocessingReceiveTask",
        "MultiprocessingTask", "NodeTask", "ProcessorTask", "ProducerTask", "Task",
    ],
    "videoflow.engines": [],
    "videoflow.engines.batch": ["BatchExecutionEngine", "BatchprocessingQueueMessenger"],
    "videoflow.engines.realtime": ["RealtimeExecutionEngine", "RealtimeQueueMessenger"],
    "videoflow.engines.task_functions": [
        "create_process_task", "create_process_task_gpu", "task_executor_fn", "task_executor_gpu_fn",
    ],
    "videoflow.processors": [
        "CountAggregator", "IdentityProcessor", "JoinerProcessor", "MaxAggregator", "MinAggregator",
        "MultiplicationAggregator", "SumAggregator",
    ],
    "videoflow.processors.aggregators": [
        "CountAggregator", "MaxAggregator", "MinAggregator", "MultiplicationAggregator", "SumAggregator",
    ],
    "videoflow.processors.basic": ["IdentityProcessor", "JoinerProcessor"],
    "videoflow.processors.vision": [],
    "videoflow.processors.vision.annotators": [
        "BoundingBoxAnnotator", "ImageAnnotator", "SegmenterAnnotator", "TrackerAnnotator",
    ],
    "videoflow.processors.vision.counters": [],
    "videoflow.processors.vision.detectors": ["BASE_URL_DETECTION", "ObjectDetector"],
    "videoflow.processors.vision.pose": [],
    "videoflow.processors.vision.segmentation": ["Segmenter"],
    "videoflow.processors.vision.trackers": ["BoundingBoxTracker"],
    "videoflow.processors.vision.transformers": [
        "CropImageTransformer", "MaskImageTransformer", "ResizeImageTransformer",
    ],
    "videoflow.producers": ["IntProducer", "VideofileReader"],
    "videoflow.producers.basic": ["IntProducer"],
    "videoflow.producers.video": [
        "ImageFolderReader", "ImageProducer", "VideoDeviceReader", "VideoFileReader", "VideoFolderReader",
        "VideoUrlReader", "VideofileReader", "VideostreamReader",
    ],
    "videoflow.utils": [],
    "videoflow.utils.downloader": ["get_file", "validate_file"],
    "videoflow.utils.generic_utils": ["DelayedInterrupt", "DelayedKeyboardInterrupt", "Progbar"],
    "videoflow.utils.graph": ["flatten", "has_cycle", "topological_sort"],
    "videoflow.utils.parsers": ["parse_label_map"],
    "videoflow.utils.system": ["get_gpus_available_to_process", "get_number_of_gpus", "get_system_gpus"],
    "videoflow.utils.transforms": ["resize_add_padding"],
    "videoflow.version": [],
}  # fmt: skip

#: videoflow 0.2.10's constructors and functions: (module, name, ((parameter, default), ...)),
#: ``*args`` / ``**kwargs`` left out.  Its engine internals (core.task, core.engine, engines.*) are
#: left out: the facade keeps their names only (see test_engine_internals_raise_saying_what_to_use).
SIGNATURES: list[tuple[str, str, tuple[tuple[str, Any], ...]]] = [
    ("consumers.basic", "CommandlineConsumer", (("sep", ' '), ("end", '\n'))),
    ("consumers.basic", "FileAppenderConsumer", ()),
    ("consumers.basic", "VoidConsumer", ()),
    ("consumers.basic", "WebhookConsumer", (("host", REQUIRED), ("method", 'post'))),
    ("consumers.video", "VideofileWriter", (("video_file", REQUIRED), ("swap_channels", True), ("fps", 30))),
    ("core.bottlenecks", "Accountant", (("nb_nodes", REQUIRED),)),
    ("core.bottlenecks", "MetadataConsumer", (("log_folder", './'),)),
    ("core.bottlenecks", "Metric", (("name", ''),)),
    ("core.bottlenecks", "MetricMessage", (("nodeid", REQUIRED), ("logtype", REQUIRED), ("value", REQUIRED))),
    ("core.bottlenecks", "MetricsLogger", (("log_folder", './'),)),
    ("core.flow", "Flow", (("producers", REQUIRED), ("consumers", REQUIRED), ("flow_type", 'realtime'))),
    ("core.graph", "GraphEngine", (("producers", REQUIRED), ("consumers", REQUIRED))),
    ("core.node", "ConsumerNode", (("metadata", False),)),
    ("core.node", "FunctionProcessorNode", (("processor_function", REQUIRED), ("nb_proc", 1), ("device", 'cpu'))),
    ("core.node", "Leaf", ()),
    ("core.node", "ModuleNode", (("entry_node", REQUIRED), ("exit_node", REQUIRED))),
    ("core.node", "Node", (("name", None),)),
    ("core.node", "OneTaskProcessorNode", (("device_type", 'cpu'),)),
    ("core.node", "ProcessorNode", (("nb_tasks", 1), ("device_type", 'cpu'))),
    ("core.node", "ProducerNode", ()),
    ("core.node", "TaskModuleNode", (("entry_node", REQUIRED), ("exit_node", REQUIRED), ("nb_tasks", 1))),
    ("core.processor", "Processor", ()),
    ("engines.task_functions", "create_process_task", (("task", REQUIRED),)),
    ("engines.task_functions", "create_process_task_gpu", (("task", REQUIRED), ("gpu_id", REQUIRED))),
    ("engines.task_functions", "task_executor_fn", (("task", REQUIRED),)),
    ("engines.task_functions", "task_executor_gpu_fn", (("task", REQUIRED), ("gpu_id", REQUIRED))),
    ("processors.aggregators", "CountAggregator", ()),
    ("processors.aggregators", "MaxAggregator", ()),
    ("processors.aggregators", "MinAggregator", ()),
    ("processors.aggregators", "MultiplicationAggregator", ()),
    ("processors.aggregators", "SumAggregator", ()),
    ("processors.basic", "IdentityProcessor", (("fps", -1),)),
    ("processors.basic", "JoinerProcessor", (("fps", -1),)),
    ("processors.vision.annotators", "BoundingBoxAnnotator", (("class_labels_path", None), ("class_labels_dataset", 'coco'), ("box_color", (255, 225, 0)), ("box_thickness", 2), ("text_color", (255, 255, 0)), ("nb_tasks", 1))),
    ("processors.vision.annotators", "ImageAnnotator", (("nb_tasks", 1),)),
    ("processors.vision.annotators", "SegmenterAnnotator", (("class_labels_path", None), ("class_labels_dataset", 'coco'), ("transparency", 0.5), ("nb_tasks", 1))),
    ("processors.vision.annotators", "TrackerAnnotator", (("box_color", (255, 225, 0)), ("box_thickness", 2), ("text_color", (255, 255, 255)), ("nb_tasks", 1))),
    ("processors.vision.detectors", "ObjectDetector", (("nb_tasks", 1), ("device_type", 'cpu'))),
    ("processors.vision.segmentation", "Segmenter", (("nb_tasks", 1), ("device_type", 'cpu'))),
    ("processors.vision.trackers", "BoundingBoxTracker", (("device_type", 'cpu'),)),
    ("processors.vision.transformers", "CropImageTransformer", (("crop_dimensions", None),)),
    ("processors.vision.transformers", "MaskImageTransformer", ()),
    ("processors.vision.transformers", "ResizeImageTransformer", (("maintain_ratio", False),)),
    ("producers.basic", "IntProducer", (("start_value", 0), ("end_value", None), ("wait_time_in_seconds", 0), ("fps", -1))),
    ("producers.video", "ImageFolderReader", ()),
    ("producers.video", "ImageProducer", (("image_path", REQUIRED),)),
    ("producers.video", "VideoDeviceReader", (("device_id", REQUIRED), ("nb_frames", -1), ("nb_retries", 0))),
    ("producers.video", "VideoFileReader", (("video_file", REQUIRED), ("swap_channels", False), ("nb_frames", -1))),
    ("producers.video", "VideoFolderReader", ()),
    ("producers.video", "VideoUrlReader", (("url", REQUIRED), ("nb_frames", -1), ("nb_retries", 0))),
    ("producers.video", "VideofileReader", (("video_file", REQUIRED), ("swap_channels", False), ("nb_frames", -1))),
    ("producers.video", "VideostreamReader", (("url_or_deviceid", REQUIRED), ("swap_channels", True), ("nb_frames", -1), ("nb_retries", 0))),
    ("utils.downloader", "get_file", (("fname", REQUIRED), ("origin", REQUIRED), ("untar", False), ("md5_hash", None), ("file_hash", None), ("cache_subdir", 'models'), ("hash_algorithm", 'auto'), ("extract", False), ("archive_format", 'auto'), ("cache_dir", None))),
    ("utils.downloader", "validate_file", (("fpath", REQUIRED), ("file_hash", REQUIRED), ("algorithm", 'auto'), ("chunk_size", 65535))),
    ("utils.generic_utils", "DelayedInterrupt", (("signals", REQUIRED),)),
    ("utils.generic_utils", "DelayedKeyboardInterrupt", ()),
    ("utils.generic_utils", "Progbar", (("target", REQUIRED), ("width", 30), ("verbose", 1), ("interval", 0.05), ("stateful_metrics", None))),
    ("utils.graph", "flatten", (("items", REQUIRED),)),
    ("utils.graph", "has_cycle", (("producers", REQUIRED),)),
    ("utils.graph", "topological_sort", (("producers", REQUIRED),)),
    ("utils.parsers", "parse_label_map", (("path_to_labels", REQUIRED),)),
    ("utils.system", "get_gpus_available_to_process", ()),
    ("utils.system", "get_number_of_gpus", ()),
    ("utils.system", "get_system_gpus", ()),
    ("utils.transforms", "resize_add_padding", (("im", REQUIRED), ("t_h", REQUIRED), ("t_w", REQUIRED))),
]  # fmt: skip

#: Deliberate differences in how a parameter is passed (the defaults are the same).
KEYWORD_ONLY = {
    # asyncflow's nodes take name= by keyword only (docs/migrating-from-videoflow.md, "Node API").
    ("core.node", "Node", "name"),
}

#: Names that exist and raise NotAvailableError when used (built or called).
UNAVAILABLE = {
    "videoflow.core": ["ConsumerTask", "ProcessorTask", "ProducerTask", "Task"],
    "videoflow.core.task": MODULES["videoflow.core.task"],
    "videoflow.core.engine": MODULES["videoflow.core.engine"],
    "videoflow.engines.batch": MODULES["videoflow.engines.batch"],
    "videoflow.engines.realtime": MODULES["videoflow.engines.realtime"],
    "videoflow.core.bottlenecks": ["MetadataConsumer", "MetricsLogger"],
    "videoflow.producers.video": ["VideoFolderReader"],
}


def facade(module: str) -> Any:
    """The facade's counterpart of a videoflow module: ``videoflow.x`` -> ``asyncflow.compat.videoflow.x``."""
    return importlib.import_module("asyncflow.compat." + module)


def test_every_videoflow_module_and_name_exists_in_the_facade() -> None:
    missing = []
    for module, names in MODULES.items():
        mod = facade(module)
        missing += [f"{module}.{name}" for name in names if not hasattr(mod, name)]
    assert missing == []


def test_the_submodules_users_import_from_exist() -> None:
    """`from videoflow.producers.video import VideoDeviceReader` and friends (issue 17, item 3)."""
    from asyncflow.compat.videoflow import consumers, processors, producers
    from asyncflow.compat.videoflow.consumers.basic import CommandlineConsumer, VoidConsumer
    from asyncflow.compat.videoflow.consumers.video import VideofileWriter
    from asyncflow.compat.videoflow.processors.basic import IdentityProcessor, JoinerProcessor
    from asyncflow.compat.videoflow.producers.basic import IntProducer
    from asyncflow.compat.videoflow.producers.video import VideoDeviceReader, VideofileReader

    assert producers.IntProducer is IntProducer and producers.VideofileReader is VideofileReader
    assert processors.IdentityProcessor is IdentityProcessor and processors.JoinerProcessor is JoinerProcessor
    assert consumers.CommandlineConsumer is CommandlineConsumer and consumers.VoidConsumer is VoidConsumer
    assert consumers.VideofileWriter is VideofileWriter
    assert producers.video.VideoDeviceReader is VideoDeviceReader
    assert VideofileReader is producers.video.VideoFileReader


def test_the_packages_re_export_their_submodules_classes() -> None:
    for package in ("videoflow.core", "videoflow.producers", "videoflow.processors", "videoflow.consumers"):
        pkg = facade(package)
        for name in MODULES[package]:
            value = getattr(pkg, name)
            homes = [m for m, names in MODULES.items() if m.startswith(package + ".") and name in names]
            for home in homes:
                assert getattr(facade(home), name) is value, (package, name, home)


def _parameters(obj: Any) -> list[inspect.Parameter]:
    signature = inspect.signature(obj)
    return [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize(("module", "name", "expected"), SIGNATURES, ids=[f"{m}.{n}" for m, n, _ in SIGNATURES])
def test_signatures_and_defaults_are_videoflow_s(module: str, name: str, expected: tuple[tuple[str, Any], ...]) -> None:
    """Every parameter of videoflow's constructor (or function) exists, in the same position, with the same default."""
    if name == "BoundingBoxTracker":
        pytest.importorskip("asyncflow.processors.vision.trackers")
    obj = getattr(facade("videoflow." + module), name)
    if isinstance(obj, type) and issubclass(obj, Unavailable):
        pytest.skip(f"{name} is kept as a name only")
    params = {p.name: p for p in _parameters(obj)}
    positional = [p.name for p in _parameters(obj) if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for index, (param, default) in enumerate(expected):
        assert param in params, f"{module}.{name}: no parameter {param!r}; it has {list(params)}"
        got = params[param]
        if (module, name, param) in KEYWORD_ONLY:
            assert got.kind is got.KEYWORD_ONLY
        else:
            assert positional[index : index + 1] == [param], f"{module}.{name}: {param!r} is not positional #{index}"
        if default is REQUIRED:
            assert got.default is REQUIRED, f"{module}.{name}: {param!r} has a default, videoflow's is required"
        else:
            assert got.default is not REQUIRED, f"{module}.{name}: {param!r} is required, videoflow's defaults"
            assert got.default == default, f"{module}.{name}: {param!r} defaults to {got.default!r}, not {default!r}"
            assert type(got.default) is type(default) or isinstance(got.default, str), (module, name, param)


def test_defaults_that_videoflow_set_in_the_body() -> None:
    """videoflow's URL and device readers passed no swap_channels (so RGB), its ImageProducer always swapped."""
    pytest.importorskip("cv2")
    from asyncflow.compat.videoflow.consumers.video import VideofileWriter
    from asyncflow.compat.videoflow.producers.video import (
        ImageProducer,
        VideoDeviceReader,
        VideoFileReader,
        VideostreamReader,
        VideoUrlReader,
    )

    assert VideoDeviceReader(0).swap_channels is True
    assert VideoUrlReader("rtsp://camera/stream").swap_channels is True
    assert VideostreamReader("clip.mp4").swap_channels is True
    assert ImageProducer("image.png").swap_channels is True
    assert VideoFileReader("clip.mp4").swap_channels is False
    assert VideofileWriter("out.avi").swap_channels is True
    assert isinstance(VideoDeviceReader(0), VideostreamReader)
    assert isinstance(VideoUrlReader("rtsp://x"), VideostreamReader)


def test_engine_internals_raise_saying_what_to_use() -> None:
    for module, names in UNAVAILABLE.items():
        mod = facade(module)
        for name in names:
            with pytest.raises(NotAvailableError, match=name) as info:
                getattr(mod, name)()
            assert isinstance(info.value, NotImplementedError)
            message = str(info.value)
            assert message.startswith(f"videoflow's {name} ") and ": " in message, message
    from asyncflow.compat.videoflow.engines import task_functions

    for name in MODULES["videoflow.engines.task_functions"]:
        function = getattr(task_functions, name)
        with pytest.raises(NotAvailableError, match="Flow"):
            function(*[None] * len(_parameters(function)))


def _videoflow_source() -> pathlib.Path:
    videoflow = pytest.importorskip("videoflow")
    assert videoflow.__file__ is not None
    return pathlib.Path(videoflow.__file__).parent


def test_the_tables_are_videoflow_s() -> None:
    """Re-derive both tables from the installed videoflow (0.2.10) and compare."""
    root = _videoflow_source()
    version = (root / "version.py").read_text()
    if "0.2.10" not in version:
        pytest.skip(f"the installed videoflow is not 0.2.10: {version.strip()}")
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts = parts[:-1]
        names: set[str] = set()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # videoflow's docstrings hold invalid escapes
            warnings.simplefilter("ignore", DeprecationWarning)
            body = ast.parse(path.read_text()).body
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif package and isinstance(node, ast.ImportFrom) and node.level > 0:
                names.update(alias.asname or alias.name for alias in node.names)
        internal = {"logger", "package_logger", "ch", "formatter", "urlretrieve"}
        found[".".join(parts)] = sorted(n for n in names if not n.startswith("_") and n not in internal)
    assert found == MODULES

    import videoflow.core.task  # noqa: F401 - the internals' module, for the loop below

    for module, name, expected in SIGNATURES:
        obj = getattr(importlib.import_module("videoflow." + module), name)
        params = tuple((p.name, p.default) for p in _parameters(obj))
        assert params == expected, (module, name)
