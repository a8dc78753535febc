"""videoflow 0.2.10's public module tree, on asyncflow's engine.

Change the imports of a videoflow script from ``videoflow.`` to
``asyncflow.compat.videoflow.`` and it runs on asyncflow::

    from asyncflow.compat.videoflow.core import Flow
    from asyncflow.compat.videoflow.producers import IntProducer
    from asyncflow.compat.videoflow.processors import IdentityProcessor
    from asyncflow.compat.videoflow.consumers import CommandlineConsumer

The modules mirror every module of videoflow 0.2.10: ``core`` (``Flow``;
``core.node``, ``core.flow``, ``core.constants``, ``core.graph``, ``core.bottlenecks``,
``core.processor``, ``core.task``, ``core.engine``), ``producers`` (``.basic``,
``.video``), ``processors`` (``.basic``, ``.aggregators``, ``.vision`` and its
``annotators``, ``counters``, ``detectors``, ``pose``, ``segmentation``, ``trackers``,
``transformers``), ``consumers`` (``.basic``, ``.video``), ``utils`` (``graph``,
``system``, ``parsers``, ``transforms``, ``generic_utils``, ``downloader``), ``engines``
and ``version``.  The node classes are asyncflow's own (re-exported, or subclassed
where videoflow's defaults differ), so they mix freely with asyncflow code; ``Flow``
is a synchronous facade over :class:`asyncflow.core.Flow`.  The names asyncflow
cannot offer (videoflow's engine internals, its downloader) are kept and raise
:class:`NotAvailableError` (a ``NotImplementedError``) saying what to use instead.
What differs from videoflow, and why, is in ``docs/migrating-from-videoflow.md`` and
in each module's docstrings.
"""

from __future__ import annotations

from . import consumers, core, engines, processors, producers, utils, version
from ._unavailable import NotAvailableError
from .version import __version__

#: The videoflow release whose public API this package mirrors.
VIDEOFLOW_VERSION = __version__

__all__ = [
    "VIDEOFLOW_VERSION",
    "NotAvailableError",
    "__version__",
    "consumers",
    "core",
    "engines",
    "processors",
    "producers",
    "utils",
    "version",
]
