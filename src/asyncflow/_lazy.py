"""Lazy re-exports: names a package offers without importing their module (and its heavy dependencies) up front.

``asyncflow.producers`` exposes ``VideoFileReader``, but importing the package must
not import OpenCV; the name is resolved by a module-level ``__getattr__`` the first
time it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]

#: The optional dependency each third-party module comes from, for the install hint.
_EXTRAS = {"cv2": "video", "numpy": "video", "httpx": "webhook"}


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` that imports ``names[name]`` (a module path) when ``name`` is first read.

    A missing optional dependency raises ``ImportError`` saying which extra to install.
    """

    def __getattr__(name: str) -> Any:
        module_name = names.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            extra = _EXTRAS.get((exc.name or "").partition(".")[0])
            if extra is None:
                raise
            raise ImportError(
                f"{package}.{name} needs the {exc.name!r} package: install it with pip install 'asyncflow[{extra}]'"
            ) from exc
        value = getattr(module, name)
        importlib.import_module(package).__dict__[name] = value  # later reads skip this function
        return value

    return __getattr__
