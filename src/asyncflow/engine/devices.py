"""Which GPU each ``device_type="gpu"`` task gets, decided in the parent before start."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from ..core.errors import FlowError
from ..core.node import Node

__all__ = ["assign_devices", "available_gpus"]


def available_gpus(configured: Sequence[str] | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPU ids tasks may use: ``configured``, else the user's ``CUDA_VISIBLE_DEVICES``,
    else what ``nvidia-smi`` lists, else none."""
    if configured is not None:
        return list(configured)
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip()]
        # CUDA stops at the first invalid id ("-1" is the usual way to hide all).
        valid: list[str] = []
        for gpu in ids:
            if gpu.startswith("-"):
                break
            valid.append(gpu)
        return valid
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()]


def assign_devices(tasks: Sequence[tuple[str, Node]], gpus: Sequence[str]) -> list[str | None]:
    """For each ``(task name, node)``: the ``CUDA_VISIBLE_DEVICES`` its process gets.

    ``None`` leaves the environment alone (CPU nodes); ``""`` hides every GPU (a GPU
    task that fell back to the CPU); an id gives the task that one device.  A GPU
    task with no device left and ``cpu_fallback=False`` raises ``FlowError``.
    """
    free = list(gpus)
    assigned: list[str | None] = []
    for task, node in tasks:
        if node.device_type != "gpu":
            assigned.append(None)
        elif free:
            assigned.append(free.pop(0))
        elif node.cpu_fallback:
            assigned.append("")
        else:
            have = f"the {len(gpus)} GPU(s) available ({', '.join(gpus)}) are taken" if gpus else "no GPU is available"
            raise FlowError(
                f"{node.describe()} (task {task}) needs a GPU and {have}; give it fewer tasks, "
                "free a device, or build it with cpu_fallback=True",
                node=node.name,
                task=task,
            )
    return assigned
