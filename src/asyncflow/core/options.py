"""``flow_options``: the documented, validated tuning knobs of a flow."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["FlowOptions", "parse_options"]

_START_METHODS = ("spawn",)
_ENGINES = ("local", "ray")


@dataclass(frozen=True)
class FlowOptions:
    """Every key that ``flow_options`` accepts, with its default.

    - ``queue_size`` (``BATCH``: 1024; ``REALTIME``: 1): items in flight on one channel
      (sent and not yet taken by the receiving task).  In ``REALTIME`` it is also the
      leaky queue's length: the sender keeps at most that many unsent items, dropping
      the oldest for a newer one, and the receiving task asks for the next item only
      once its node is free, so a node always starts on the newest item.  A bigger
      ``queue_size`` there drops less but lets items wait: an item's age grows by
      up to ``queue_size`` item periods per hop.  What is in flight on one hop is at most ``queue_size``
      plus the batch each side holds in hand (``queue_size + 2 * batch_size``),
      whatever the item size; the whole flow holds that times the hops.
    - ``batch_size`` (``BATCH``: 512, at most ``queue_size``; ``REALTIME``: 1, so that
      nothing waits to fill a frame): the most items one frame carries
      between two processes, and the most a task takes in at once.  Frames are sent
      when full, when the sending task is idle, or when ``flush_interval`` has passed
      since the first item in them.
    - ``max_age`` (``None``): seconds; an item already older than that (counted from
      when its producer emitted it) when a node would start on it is dropped before
      the work and counted as ``"stale"``.  Load shedding for live sources, in either
      flow type (in ``BATCH`` it drops too: a user who sets it asks for that).
    - ``flush_interval`` (0.001 s): the longest an item waits in a partly filled frame.
    - ``max_bytes_in_flight`` (64 MiB): a byte budget per channel on top of
      ``queue_size``, so large items do not multiply memory (one frame is always
      allowed, whatever its size).
    - ``start_method`` (``"spawn"``): how task processes start.  Only ``"spawn"``
      is accepted: ``"fork"`` copies the parent's running event loop and every open
      socket into each child (a child then holds its siblings' channel ends, so a
      dead peer is never seen), and ``"forkserver"`` leaves its server process
      running after the flow and makes it, not the flow, the children's parent.
    - ``log_level`` (``None``): the children's logging level; their records are
      logged again in the parent (``None``: WARNING).
    - ``stop_timeout`` (10.0 s): how long a cancelled ``run()`` waits for the tasks
      to finish gracefully before it ends them hard.
    - ``engine`` (``"local"``): which engine runs the tasks: ``"local"`` (one OS
      process per task on this machine) or ``"ray"`` (one Ray actor per task; needs
      ``pip install asyncflow[ray]``).
    - ``ray_address`` (``None``): with ``engine="ray"``, the address of an existing
      Ray cluster; ``None`` starts a local Ray for the flow and stops it after.
    - ``ray_runtime_env`` (``None``): with ``engine="ray"``, a Ray runtime environment
      (a dict, as ``ray.init(runtime_env=...)`` takes it: ``working_dir``,
      ``py_modules``, ``pip``, ``env_vars``...) for the flow's actors, so that a
      cluster's workers get the code and packages the nodes need (docs/ray.md).
    - ``progress`` (``False``): show the live display (``asyncflow.monitor.LiveDisplay``:
      a table on a terminal, one summary line otherwise) while ``run()`` runs.
    - ``gpus`` (``None``): the GPU ids that ``device_type="gpu"`` tasks may use.
      ``None``: those ``CUDA_VISIBLE_DEVICES`` lists, else those ``nvidia-smi``
      finds, else none.
    """

    queue_size: int = 1024
    batch_size: int = 512
    flush_interval: float = 0.001
    max_bytes_in_flight: int = 64 * 1024 * 1024
    start_method: str = "spawn"
    log_level: int | None = None
    stop_timeout: float = 10.0
    engine: str = "local"
    ray_address: str | None = None
    #: Excluded from ``==`` and ``hash``: a dict (a frozen dataclass hashes its fields).
    ray_runtime_env: dict[str, Any] | None = field(default=None, compare=False)
    gpus: tuple[str, ...] | None = None
    progress: bool = False
    max_age: float | None = None


def _int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"flow_options[{key!r}] must be an int >= {minimum}, got {value!r}")
    return value


def _float(key: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise ValueError(f"flow_options[{key!r}] must be a number >= {minimum}, got {value!r}")
    return float(value)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if key == "start_method" and value in ("fork", "forkserver"):
        raise ValueError(
            f"flow_options['start_method'] = {value!r} is not supported: asyncflow starts tasks with 'spawn' "
            "(fork would copy the running event loop and every channel into each child; a forkserver "
            "outlives the flow)"
        )
    if value not in choices:
        raise ValueError(f"flow_options[{key!r}] must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def _level(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        level = logging.getLevelName(value.upper())
        if isinstance(level, int):
            return level
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"flow_options['log_level'] must be a logging level (int or name), got {value!r}")


#: ``REALTIME``'s defaults: a leaky queue of one item per hop, frames of one item.
REALTIME_QUEUE_SIZE = 1
REALTIME_BATCH_SIZE = 1


def parse_options(options: Mapping[str, Any] | None, *, realtime: bool = False) -> FlowOptions:
    """Validate ``flow_options`` and fill in defaults (``realtime``: REALTIME's); unknown keys are an error."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise TypeError(f"flow_options must be a dict, got {type(options).__name__}")
    known = {f.name for f in fields(FlowOptions)}
    for key in options:
        if key not in known:
            raise ValueError(
                f"flow_options: unknown key {key!r}; known keys: {', '.join(sorted(known))}"
            )
    queue_size = _int(
        "queue_size", options.get("queue_size", REALTIME_QUEUE_SIZE if realtime else FlowOptions.queue_size), 1
    )
    default_batch = REALTIME_BATCH_SIZE if realtime else min(FlowOptions.batch_size, max(1, queue_size // 2))
    batch_size = _int("batch_size", options.get("batch_size", default_batch), 1)
    if batch_size > queue_size:
        raise ValueError(
            f"flow_options['batch_size'] ({batch_size}) cannot exceed flow_options['queue_size'] ({queue_size})"
        )
    engine = _choice("engine", options.get("engine", "local"), _ENGINES)
    if engine == "ray" and options.get("max_age") is not None:
        raise ValueError(
            "flow_options['max_age'] is not supported with engine='ray' (Ray's rows carry no birth times; "
            "see docs/ray.md, 'Where Ray differs'): use the local engine, or leave max_age out"
        )
    return FlowOptions(
        queue_size=queue_size,
        batch_size=batch_size,
        flush_interval=_float("flush_interval", options.get("flush_interval", FlowOptions.flush_interval), 0.0),
        max_bytes_in_flight=_int(
            "max_bytes_in_flight", options.get("max_bytes_in_flight", FlowOptions.max_bytes_in_flight), 1
        ),
        start_method=_choice("start_method", options.get("start_method", "spawn"), _START_METHODS),
        log_level=_level(options.get("log_level")),
        stop_timeout=_float("stop_timeout", options.get("stop_timeout", FlowOptions.stop_timeout), 0.0),
        engine=engine,
        ray_address=_address(options.get("ray_address")),
        ray_runtime_env=_runtime_env(options.get("ray_runtime_env")),
        gpus=_gpus(options.get("gpus")),
        progress=_bool("progress", options.get("progress", False)),
        max_age=_max_age(options.get("max_age")),
    )


def _max_age(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"flow_options['max_age'] must be a number of seconds > 0 (or None), got {value!r}")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"flow_options[{key!r}] must be True or False, got {value!r}")
    return value


def _address(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise ValueError(f"flow_options['ray_address'] must be a non-empty str (e.g. 'ray://head:10001'), got {value!r}")


def _runtime_env(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(key, str) and key for key in value):
        raise ValueError(
            "flow_options['ray_runtime_env'] must be a dict of Ray runtime-environment fields "
            f"(e.g. {{'working_dir': '.', 'pip': ['numpy']}}), got {value!r}"
        )
    env_vars = value.get("env_vars")
    if env_vars is not None and (
        not isinstance(env_vars, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items())
    ):
        raise ValueError(f"flow_options['ray_runtime_env']['env_vars'] must map str to str, got {env_vars!r}")
    return dict(value)


def _gpus(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"flow_options['gpus'] must be a list of GPU ids (ints or strings), got {value!r}")
    ids: list[str] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or str(item).strip() == "":
            raise ValueError(f"flow_options['gpus'] must hold GPU ids (ints or strings), got {item!r}")
        ids.append(str(item).strip())
    if len(set(ids)) != len(ids):
        raise ValueError(f"flow_options['gpus'] lists a GPU twice: {value!r}")
    return tuple(ids)
