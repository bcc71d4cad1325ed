"""Where a dataset's encoded images live: a folder tree or a BasicSR LMDB.

Both stores answer ``keys()`` (relative path without extension, '/'-separated) and
``read(key) -> bytes``, so pairing and decoding do not care which one is used. LMDB
environments open lazily, once per process, so DataLoader workers each get their own.
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
LMDB_META_INFO = "meta_info.txt"


class ImageStore:
    """Encoded images addressed by key."""

    root: str

    def keys(self) -> list[str]:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def source(self, key: str) -> str:
        """A human-readable location of ``key`` for error messages."""
        raise NotImplementedError


class FolderStore(ImageStore):
    """Image files under ``root``, recursively; keys are relative paths without extension."""

    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image folder not found: {self.root}")
        self._paths = {}
        for path in sorted(Path(self.root).rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                key = path.relative_to(self.root).with_suffix("").as_posix()
                if key in self._paths:
                    raise ValueError(f"{self.root}: two images share the name {key!r} "
                                     f"({self._paths[key].name} and {path.name})")
                self._paths[key] = path

    def keys(self) -> list[str]:
        return list(self._paths)

    def read(self, key: str) -> bytes:
        return self._paths[key].read_bytes()

    def source(self, key: str) -> str:
        return str(self._paths[key])


def lmdb_key(meta_name: str) -> str:
    """The database key of a ``meta_info.txt`` name: BasicSR lists ``key.png``, stores ``key``."""
    root, ext = os.path.splitext(meta_name)
    return root if ext.lower() in IMAGE_EXTENSIONS else meta_name


_LMDB_ENVS: dict[str, tuple[int, object]] = {}


def _lmdb_env(root: str):
    """One read-only environment per path and process.

    py-lmdb refuses a second open of a path in one process (two datasets on one LMDB share
    it), and LMDB handles must not cross fork: a copy inherited by a DataLoader worker is
    closed and reopened there.
    """
    import lmdb

    key = os.path.realpath(root)
    pid, env = _LMDB_ENVS.get(key, (None, None))
    if pid != os.getpid():
        if env is not None:
            env.close()
        env = lmdb.open(root, readonly=True, lock=False, readahead=False, meminit=False)
        _LMDB_ENVS[key] = (os.getpid(), env)
    return env


class LmdbStore(ImageStore):
    """A BasicSR LMDB (``data.mdb`` + ``meta_info.txt`` with ``key (h,w,c) level`` lines)."""

    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        meta = Path(self.root) / LMDB_META_INFO
        if not meta.is_file():
            raise FileNotFoundError(f"{self.root}: not a finished LMDB (no {LMDB_META_INFO})")
        self._keys = [lmdb_key(line.split(" ")[0]) for line in meta.read_text().splitlines() if line.strip()]

    def keys(self) -> list[str]:
        return list(self._keys)

    def read(self, key: str) -> bytes:
        with _lmdb_env(self.root).begin(write=False) as txn:
            data = txn.get(key.encode("ascii"))
        if data is None:
            raise KeyError(f"{self.root}: key {key!r} listed in {LMDB_META_INFO} but missing from the database")
        return bytes(data)

    def source(self, key: str) -> str:
        return f"{self.root}:{key}"


def open_store(root: str | os.PathLike, backend: str = "auto") -> ImageStore:
    """A store for ``root``: ``lmdb`` for ``*.lmdb`` folders (or when asked), else a folder tree."""
    if backend not in ("auto", "disk", "lmdb"):
        raise ValueError(f"io_backend type must be 'disk' or 'lmdb', got {backend!r}")
    is_lmdb = backend == "lmdb" or (backend == "auto" and str(root).rstrip("/").endswith(".lmdb"))
    return LmdbStore(root) if is_lmdb else FolderStore(root)
