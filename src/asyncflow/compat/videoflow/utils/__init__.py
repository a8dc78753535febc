"""videoflow's ``videoflow.utils``: graph algorithms, GPU discovery and small helpers.

- :mod:`.graph`: ``has_cycle``, ``topological_sort``, ``flatten`` (videoflow's algorithms,
  over asyncflow's nodes);
- :mod:`.system`: ``get_number_of_gpus``, ``get_system_gpus``,
  ``get_gpus_available_to_process`` (``nvidia-smi`` and ``CUDA_VISIBLE_DEVICES``);
- :mod:`.parsers`: ``parse_label_map`` (asyncflow's);
- :mod:`.transforms`: ``resize_add_padding`` (asyncflow's resize; needs the ``video`` extra);
- :mod:`.generic_utils`: ``Progbar``, ``DelayedInterrupt``, ``DelayedKeyboardInterrupt``;
- :mod:`.downloader`: ``get_file`` raises: asyncflow downloads nothing.

The submodules are imported when first named (``from ...utils import system``).
"""

from __future__ import annotations

__all__ = ["downloader", "generic_utils", "graph", "parsers", "system", "transforms"]
