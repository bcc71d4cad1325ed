"""Matching low-resolution images to their high-resolution partners."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from realesrgan_ext.data.image_store import IMAGE_EXTENSIONS, ImageStore


def lq_key_for(gt_key: str, filename_tmpl: str = "{}") -> str:
    """The LR key of an HR key: same folder, name through ``filename_tmpl`` (e.g. '{}x4')."""
    folder, name = posixpath.split(gt_key)
    return posixpath.join(folder, filename_tmpl.format(name))


def _strip_extension(path: str) -> str:
    root, ext = posixpath.splitext(path.strip().replace("\\", "/"))
    return root if ext.lower() in IMAGE_EXTENSIONS else path.strip()


def read_meta_info(path: str | Path) -> list[tuple[str, str | None]]:
    """Pairs listed in a meta-info file.

    Accepted lines: ``gt_path`` (BasicSR), ``gt_path (h,w,c) level`` (BasicSR LMDB) or
    ``gt_path, lq_path`` (an explicit pair). Paths are relative to the data roots.
    """
    pairs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "," in line and "(" not in line:
            gt, lq = (part.strip() for part in line.split(",", 1))
            if not gt or not lq:
                raise ValueError(f"{path}:{number}: expected 'gt_path, lq_path', got {line!r}")
            pairs.append((_strip_extension(gt), _strip_extension(lq)))
        else:
            pairs.append((_strip_extension(re.split(r"\s+", line.strip())[0]), None))
    if not pairs:
        raise ValueError(f"{path}: meta-info file lists no images")
    return pairs


def pair_images(gt_store: ImageStore, lq_store: ImageStore, filename_tmpl: str = "{}",
                meta_info_file: str | None = None) -> list[tuple[str, str]]:
    """(gt_key, lq_key) for every HR image (or every meta-info entry); errors list what is missing."""
    if meta_info_file:
        wanted = [(gt, lq or lq_key_for(gt, filename_tmpl)) for gt, lq in read_meta_info(meta_info_file)]
    else:
        wanted = [(gt, lq_key_for(gt, filename_tmpl)) for gt in sorted(gt_store.keys())]
    gt_keys, lq_keys = set(gt_store.keys()), set(lq_store.keys())
    missing = [f"HR {gt!r} in {gt_store.root}" for gt, _ in wanted if gt not in gt_keys]
    missing += [f"LR {lq!r} in {lq_store.root} (partner of HR {gt!r})" for gt, lq in wanted if lq not in lq_keys]
    if missing:
        shown = "\n  ".join(missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise FileNotFoundError(f"{len(missing)} image(s) of the LR/HR pairs are missing:\n  {shown}{more}")
    if not wanted:
        raise ValueError(f"no images found in {gt_store.root}")
    return wanted
