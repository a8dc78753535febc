"""videoflow's ``videoflow.processors.vision.segmentation``: the ``Segmenter`` base class.

As in videoflow, ``Segmenter`` is abstract: ``process(im)`` returns
``self._segment(im)``, which a subclass implements to return
``(masks, classes, scores)`` -- ``masks`` ``(nb_masks, h, w)``, ``classes`` and
``scores`` ``(nb_masks,)`` -- what ``SegmenterAnnotator`` draws.  videoflow's
trained segmenters lived in videoflow-contrib and downloaded their models;
asyncflow has none and downloads nothing: load your own model in ``open()`` (it
runs in the node's process) and implement ``_segment``.
"""

from __future__ import annotations

from typing import Any

from asyncflow.core.node import ProcessorNode

__all__ = ["Segmenter"]


class Segmenter(ProcessorNode):
    """Base of the image segmenters: ``process(im)`` returns ``self._segment(im)``."""

    def _segment(self, im: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _segment(im) -> (masks, classes, scores). videoflow's "
            "segmentation models came from videoflow-contrib, which downloaded them; asyncflow has none: "
            "load your own model in open() and run it in _segment()"
        )

    def process(self, im: Any) -> Any:
        """Return ``self._segment(im)``: ``(masks, classes, scores)``."""
        return self._segment(im)
