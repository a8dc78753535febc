"""videoflow's ``videoflow.engines.task_functions``: names only; each raises (asyncflow's engine starts the tasks)."""

from __future__ import annotations

from typing import Any, NoReturn

from .._unavailable import ENGINE_INTERNALS, unavailable

__all__ = ["create_process_task", "create_process_task_gpu", "task_executor_fn", "task_executor_gpu_fn"]


def task_executor_fn(task: Any) -> NoReturn:
    """videoflow's engine internal: raises ``NotAvailableError``."""
    unavailable("task_executor_fn", ENGINE_INTERNALS)


def task_executor_gpu_fn(task: Any, gpu_id: int) -> NoReturn:
    """videoflow's engine internal: raises ``NotAvailableError``."""
    unavailable("task_executor_gpu_fn", ENGINE_INTERNALS)


def create_process_task(task: Any) -> NoReturn:
    """videoflow's engine internal: raises ``NotAvailableError``."""
    unavailable("create_process_task", ENGINE_INTERNALS)


def create_process_task_gpu(task: Any, gpu_id: int) -> NoReturn:
    """videoflow's engine internal: raises ``NotAvailableError``."""
    unavailable("create_process_task_gpu", ENGINE_INTERNALS)
