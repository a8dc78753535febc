"""videoflow's ``videoflow.processors.basic``: ``IdentityProcessor`` and ``JoinerProcessor`` (asyncflow's).

``IdentityProcessor(fps=-1, nb_tasks=1, device_type="cpu")`` passes each item on;
``JoinerProcessor(fps=-1, ...)`` joins one item of each parent into a tuple.
``fps > 0`` sleeps ``1 / fps`` seconds an item, as in videoflow.
"""

from __future__ import annotations

from asyncflow.processors.basic import IdentityProcessor, JoinerProcessor

__all__ = ["IdentityProcessor", "JoinerProcessor"]
