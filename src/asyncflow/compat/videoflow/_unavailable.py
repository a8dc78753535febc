"""The videoflow names the facade keeps without offering them: using one raises, saying what to use instead."""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

__all__ = ["ENGINE_INTERNALS", "NotAvailableError", "Unavailable", "unavailable"]

#: What to say about videoflow's engine internals (tasks, messengers, execution engines).
ENGINE_INTERNALS = (
    "is part of videoflow's own process engine, which asyncflow replaces: build the nodes and a "
    "Flow (asyncflow.compat.videoflow.core.Flow) and call run(); the tasks, their processes and "
    "channels are asyncflow's engine's business (flow_type=REALTIME / BATCH choose its behaviour)"
)


class NotAvailableError(NotImplementedError):
    """A videoflow name that ``asyncflow.compat.videoflow`` keeps but cannot offer; the message says why
    and what to use instead.  A ``NotImplementedError``."""


def unavailable(name: str, what: str) -> NoReturn:
    """Raise :class:`NotAvailableError` for videoflow's ``name``, which ``what`` (a sentence's end)."""
    raise NotAvailableError(f"videoflow's {name} {what}")


class Unavailable:
    """Base of the videoflow classes the facade names but does not offer: building one raises.

    Subclasses say why in ``_what`` (the end of the sentence "videoflow's X ...").
    """

    _what: ClassVar[str] = ENGINE_INTERNALS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        unavailable(type(self).__name__, self._what)
