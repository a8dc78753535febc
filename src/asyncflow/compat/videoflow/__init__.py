"""videoflow 0.2.10's public module tree, on asyncflow's engine.

Change the imports of a videoflow script from ``videoflow.`` to
``asyncflow.compat.videoflow.`` and it runs on asyncflow::

    from asyncflow.compat.videoflow.core import Flow
    from asyncflow.compat.videoflow.producers import IntProducer
    from asyncflow.compat.videoflow.processors import IdentityProcessor
    from asyncflow.compat.videoflow.consumers import CommandlineConsumer

The modules mirror videoflow's: ``core`` (``Flow``; ``core.node``, ``core.flow``,
``core.constants``), ``producers``, ``processors`` (``processors.aggregators``,
``processors.vision``) and ``consumers``.  The node classes are asyncflow's own
(re-exported), so they mix freely with asyncflow code; ``Flow`` is a synchronous
facade over :class:`asyncflow.core.Flow`.  What differs from videoflow, and why, is
in ``docs/migrating-from-videoflow.md`` and in each module's docstrings.
"""

from __future__ import annotations

from . import consumers, core, processors, producers

#: The videoflow release whose public API this package mirrors.
VIDEOFLOW_VERSION = "0.2.10"

__all__ = ["VIDEOFLOW_VERSION", "consumers", "core", "processors", "producers"]
