"""Every module's ``__all__`` and its public names agree (as anyio's tests/test_all_attributes.py checks)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil

import pytest

import asyncflow

#: Modules that need an optional dependency this machine may lack, or that import a heavy one.
_OPTIONAL = ("asyncflow.engine.ray_", "asyncflow.monitor.web", "asyncflow.compat.videoflow.engines")


def _modules() -> list[str]:
    names = ["asyncflow"]
    for info in pkgutil.walk_packages(asyncflow.__path__, "asyncflow."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_all_lists_what_the_module_defines(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        if name.startswith(_OPTIONAL):
            pytest.skip(f"optional dependency missing: {exc}")
        raise
    listed = getattr(module, "__all__", None)
    if listed is None:
        pytest.skip("no __all__")
    for public in listed:
        package = hasattr(module, "__path__")
        is_submodule = package and importlib.util.find_spec(f"{name}.{public}") is not None
        assert hasattr(module, public) or is_submodule, f"{name}.__all__ lists {public!r}, which it does not define"
    assert len(set(listed)) == len(listed), f"{name}.__all__ lists a name twice"
    defined = [
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == name
    ]
    missing = sorted(set(defined) - set(listed))
    assert not missing, f"{name} defines public {missing} but leaves them out of __all__"
