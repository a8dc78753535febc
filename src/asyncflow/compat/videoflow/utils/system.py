"""videoflow's ``videoflow.utils.system``: which GPUs the machine has, and which this process may use.

- ``get_number_of_gpus()``: how many GPUs ``nvidia-smi`` lists (asyncflow's own
  discovery, :func:`asyncflow.engine.devices.available_gpus`); 0 without
  ``nvidia-smi`` or when it fails.
- ``get_system_gpus()``: their ids, ``{0, ..., n - 1}``.
- ``get_gpus_available_to_process()``: the system's ids that ``CUDA_VISIBLE_DEVICES``
  allows, as videoflow computed them: unset allows every GPU, empty allows none,
  and entries that are not integers are skipped.  Returned in increasing order.

Each function looks the others up in this module when called, so a test may
replace one with ``monkeypatch.setattr(system, "get_system_gpus", ...)`` and the
others see it, as in videoflow.  The facade's ``Flow`` asks
``get_gpus_available_to_process()`` for the GPUs its ``device_type="gpu"`` tasks may
use (unless ``flow_options["gpus"]`` says), as videoflow's engine did.
"""

from __future__ import annotations

import os

from asyncflow.engine.devices import available_gpus

__all__ = ["get_gpus_available_to_process", "get_number_of_gpus", "get_system_gpus"]


def get_number_of_gpus() -> int:
    """The number of GPUs in the machine, as ``nvidia-smi`` lists them (0 without it)."""
    return len(available_gpus(None, environ={}))


def get_system_gpus() -> set[int]:
    """The ids of the machine's GPUs: ``{0, ..., get_number_of_gpus() - 1}``."""
    return set(range(get_number_of_gpus()))


def get_gpus_available_to_process() -> list[int]:
    """The ids of the GPUs this process may use: the system's, as ``CUDA_VISIBLE_DEVICES`` restricts them."""
    system_devices = get_system_gpus()
    visible_var = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible_var is None:
        visible = set(system_devices)
    else:
        visible = set()
        for entry in visible_var.strip().split(","):
            try:
                visible.add(int(entry))
            except ValueError:
                continue
    return sorted(system_devices & visible)
