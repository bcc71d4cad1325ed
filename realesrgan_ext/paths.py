"""Where realesrgan_ext keeps files it builds at run time (converted weights, engine files), privately.

The cache holds files that are later loaded and run (ONNX graphs, OpenVINO blobs, converted
weights), so whoever can write there can change what runs. Its folders are created private
(0700), and a folder that another user owns, or that group or others may write, is refused with
``CacheDirError`` before anything in it is read or written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

CACHE_ENV = "REALESRGAN_EXT_CACHE"
PRIVATE = 0o700


class CacheDirError(PermissionError):
    """A cache folder others could write into; the message names it and how to fix it."""


def cache_root() -> Path:
    """``$REALESRGAN_EXT_CACHE`` or ``~/.cache/realesrgan_ext``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "realesrgan_ext")


def cache_dir(*parts: str) -> Path:
    """The cache folder (``cache_root()/parts...``), each level created private and checked (``check_private``)."""
    path = cache_root()
    path.parent.mkdir(parents=True, exist_ok=True)
    for part in ("", *parts):
        path = path / part if part else path
        try:
            path.mkdir(mode=PRIVATE)
        except FileExistsError:
            pass
        check_private(path)
    return path


def check_private(path: Path) -> None:
    """Raise ``CacheDirError`` unless ``path`` is a folder of this user that group and others cannot write."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise CacheDirError(f"cache folder {path} is not a plain folder (a link or a file); refused. Remove it, "
                            f"or point {CACHE_ENV} at a private folder")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheDirError(f"cache folder {path} belongs to another user (uid {info.st_uid}); refused, since "
                            f"files in it are loaded and run. Point {CACHE_ENV} at a folder of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        fix = f"point {CACHE_ENV} at a private folder" if info.st_mode & stat.S_ISVTX else f"chmod 700 {path}"
        raise CacheDirError(f"cache folder {path} can be written by others (mode {stat.S_IMODE(info.st_mode):o}); "
                            f"refused, since files in it are loaded and run. Fix it: {fix}")
