"""videoflow's ``videoflow.processors.vision.pose``: empty, as in videoflow 0.2.10.

videoflow's pose estimators lived in videoflow-contrib and downloaded their
models; asyncflow has none.  Write a ``ProcessorNode`` that loads your model in
``open()`` and runs it in ``process(im)``.
"""

from __future__ import annotations

__all__: list[str] = []
