"""The engines that run a linearized flow.

``local`` (the default): one OS process per task on this machine.  ``ray``: one
Ray actor per task (``pip install asyncflow[ray]``).  Each engine provides a
scheduler class with the same interface: ``Scheduler(stages, flow_type, options)``,
``await run()``, ``request_stop(timeout)``, ``kill(reason)``, ``stats()``,
``host_ready`` / ``results_receiver(node)``.
"""

from __future__ import annotations

from typing import Any

from .scheduler import LocalScheduler

__all__ = ["LocalScheduler", "scheduler_for"]


def scheduler_for(engine: str) -> Any:
    """The scheduler class of ``engine`` (imports Ray only when asked for)."""
    if engine == "local":
        return LocalScheduler
    if engine == "ray":
        try:
            from .ray_scheduler import RayScheduler
        except ImportError as exc:
            raise ImportError(
                "flow_options['engine'] = 'ray' needs Ray: pip install 'asyncflow[ray]'"
            ) from exc
        return RayScheduler
    raise ValueError(f"unknown engine {engine!r}")
