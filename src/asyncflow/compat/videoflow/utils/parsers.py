"""videoflow's ``videoflow.utils.parsers``: ``parse_label_map`` (asyncflow's, which needs the ``video`` extra).

``parse_label_map(path)`` reads a TensorFlow ``.pbtxt`` label map into
``{id: display_name}``, as videoflow's did (asyncflow's parser also accepts items
that have a ``name`` but no ``display_name``).
"""

from __future__ import annotations

import os


def parse_label_map(path_to_labels: str | os.PathLike[str]) -> dict[int, str]:
    """``{id: display_name}`` of a TensorFlow ``.pbtxt`` label map."""
    from asyncflow.processors.vision.annotators import parse_label_map as parse

    return parse(path_to_labels)


__all__ = ["parse_label_map"]
