"""Engine files in the cache, verified before every use: the cache proves itself.

Every file an engine builds and reuses (an ONNX export, OpenVINO's compiled blobs) has a record
beside it, ``<file>.json``: the sha256 of the file's bytes and the key of what it was made from
(``engines.model_key`` of the weights, or ``openvino``). ``verified`` accepts an entry only when
its record exists, names that source and matches the bytes; any other entry (truncated, edited,
copied from other weights, left without a record) is removed with a one-line note on the
``realesrgan_ext.cache`` logger (printed to stderr when logging is not configured) and rebuilt by
the caller. The probe's exactness figure is recorded with the digests of the files it measured
(``engines.checked_psnr``), so the figure printed is always that of the file in use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

RECORD_SUFFIX = ".json"
LOG = logging.getLogger("realesrgan_ext.cache")


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2 ** 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def write_record(path: Path, source: str) -> str:
    """Record ``path``'s digest and what it was made from (atomic write); returns the digest."""
    digest = file_digest(path)
    record = record_path(path)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps({"sha256": digest, "source": source}))
    os.replace(tmp, record)
    return digest


def verified(path: Path, source: str) -> str | None:
    """The digest of the cache entry ``path`` if it is intact and made from ``source``; else None.

    A file that exists but fails the check is removed (with its record) and noted in one line.
    """
    if not path.is_file():
        record_path(path).unlink(missing_ok=True)
        return None
    problem = entry_problem(path, source)
    if problem is None:
        return json.loads(record_path(path).read_text())["sha256"]
    LOG.warning("note: engine cache: %s %s; rebuilding it", path.name, problem)
    path.unlink(missing_ok=True)
    record_path(path).unlink(missing_ok=True)
    return None


def entry_problem(path: Path, source: str) -> str | None:
    """Why ``path`` cannot be trusted (``has no record``, ``is damaged``, ``was made from other weights``)."""
    try:
        record = json.loads(record_path(path).read_text())
        expected, made_from = str(record["sha256"]), str(record["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return "has no valid record of its hash"
    if made_from != source:
        return "was made from other weights (a foreign entry)"
    if file_digest(path) != expected:
        return "is damaged (its bytes no longer match its recorded hash)"
    return None


def verify_folder(folder: Path, source: str) -> None:
    """Check every entry of a folder another library fills (OpenVINO's CACHE_DIR): damaged, unrecorded or
    foreign files are removed, so the library rebuilds them instead of loading them."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.endswith(RECORD_SUFFIX) and not path.name.startswith("."):
            verified(path, source)


def record_folder(folder: Path, source: str) -> None:
    """Record every file of ``folder`` that has no record yet (after the library wrote its entries)."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.endswith(RECORD_SUFFIX) and not path.name.startswith(".") \
                and not record_path(path).is_file():
            write_record(path, source)
