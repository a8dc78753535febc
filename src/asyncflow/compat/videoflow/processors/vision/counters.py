"""videoflow's ``videoflow.processors.vision.counters``: empty, as in videoflow 0.2.10.

To count items, ``asyncflow.compat.videoflow.processors.aggregators.CountAggregator``;
to count objects, a processor over a tracker's tracks (their distinct track ids).
"""

from __future__ import annotations

__all__: list[str] = []
