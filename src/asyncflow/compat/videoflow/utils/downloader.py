"""videoflow's ``videoflow.utils.downloader``: asyncflow downloads nothing, so ``get_file`` raises.

videoflow fetched its label maps and models from its GitHub releases into
``~/.videoflow`` (``get_file(fname, origin, ...)``, copied from Keras).  asyncflow
downloads nothing at run time: give your model or label file as a local path.
``get_file`` keeps its name and signature and raises :class:`DownloadNotAvailable`
(a ``NotImplementedError``) saying so; the COCO label map videoflow downloaded for
``BoundingBoxAnnotator`` is bundled with asyncflow.

``validate_file(fpath, file_hash, algorithm="auto")`` (a local hash check) works as
in videoflow: ``"auto"`` means sha256 for a 64-character hash, else md5.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from asyncflow.compat.videoflow._unavailable import NotAvailableError

__all__ = ["DownloadNotAvailable", "get_file", "validate_file"]


class DownloadNotAvailable(NotAvailableError):
    """Raised by ``get_file``: asyncflow does not download models or data."""


def get_file(
    fname: str,
    origin: str,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "models",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: str = "auto",
    cache_dir: str | None = None,
) -> str:
    """Raise :class:`DownloadNotAvailable`: asyncflow downloads nothing (see the module docstring)."""
    raise DownloadNotAvailable(
        f"videoflow's get_file({fname!r}, {origin!r}) downloaded files into ~/.videoflow; asyncflow downloads "
        "nothing. Download the file yourself and pass its local path (e.g. BoundingBoxAnnotator("
        "class_labels_path=...), or an ONNX model file to asyncflow.processors.vision.onnx.OnnxDetector); "
        "the COCO label map is bundled (BoundingBoxAnnotator(class_labels_dataset='coco'))"
    )


def _hash_file(fpath: str | os.PathLike[str], algorithm: str = "sha256", chunk_size: int = 65535) -> str:
    hasher: Any = hashlib.sha256() if algorithm in ("sha256", "auto") else hashlib.md5()
    with open(fpath, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_size), b""):
            hasher.update(chunk)
    return str(hasher.hexdigest())


def validate_file(
    fpath: str | os.PathLike[str], file_hash: str, algorithm: str = "auto", chunk_size: int = 65535
) -> bool:
    """Whether the file at ``fpath`` has the sha256 (or md5) hash ``file_hash``."""
    sha256 = algorithm == "sha256" or (algorithm == "auto" and len(file_hash) == 64)
    hasher = "sha256" if sha256 else "md5"
    return _hash_file(fpath, hasher, chunk_size) == str(file_hash)
