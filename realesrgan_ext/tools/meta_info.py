"""Meta-info files: the list of images a BasicSR dataset reads instead of scanning a folder.

Format (what basicsr parses): one image path per line, relative to the GT folder, '/'
separators; basicsr keeps the first space-separated token of each line, so paths may not
contain spaces. The same file serves

* ``RealESRGANDataset`` (``meta_info``): GT path = ``dataroot_gt / line``;
* ``PairedImageDataset`` (``meta_info_file``, ``paired_paths_from_meta_info_file``):
  GT path = ``dataroot_gt / line`` and LR path = ``dataroot_lq / filename_tmpl.format(stem) + ext``
  where stem and ext are those of the line's *file name*: basicsr looks for the LR flat in
  ``dataroot_lq`` under the GT's base name, whatever GT subfolder it is in.

``paired_meta_info`` therefore checks that every GT has its LR where basicsr will look.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from realesrgan_ext.data.image_io import ImageReadError, read_image
from realesrgan_ext.tools.image_files import DataToolError, list_images


def lr_name_for(gt_rel: str, filename_tmpl: str = "{}") -> str:
    """Where basicsr's ``paired_paths_from_meta_info_file`` looks for the LR of ``gt_rel`` (relative to LR root)."""
    stem, ext = posixpath.splitext(posixpath.basename(gt_rel))
    return f"{filename_tmpl.format(stem)}{ext}"


def folder_meta_info(gt_dir: str | Path) -> list[str]:
    """Meta-info lines for every image under ``gt_dir`` (recursively, sorted)."""
    rels = list_images(gt_dir)
    if not rels:
        raise DataToolError(f"{gt_dir}: no image files found")
    spaced = [rel for rel in rels if any(ch.isspace() for ch in rel)]
    if spaced:
        raise DataToolError(f"{len(spaced)} path(s) under {gt_dir} contain whitespace, which basicsr's meta-info "
                            "parsing cuts off; rename them: " + ", ".join(spaced[:5]))
    return rels


def paired_meta_info(gt_dir: str | Path, lr_dir: str | Path, filename_tmpl: str = "{}") -> list[str]:
    """Meta-info lines for GT/LR pairs; every GT's LR must exist at ``lr_dir / lr_name_for(gt)``."""
    lines = folder_meta_info(gt_dir)
    lr_dir = Path(lr_dir)
    missing, owners = [], {}
    for rel in lines:
        lr_name = lr_name_for(rel, filename_tmpl)
        if lr_name in owners:
            missing.append(f"{rel} and {owners[lr_name]} both need LR {lr_dir / lr_name} (same base name)")
        owners[lr_name] = rel
        if not (lr_dir / lr_name).is_file():
            missing.append(f"{rel}: no LR at {lr_dir / lr_name}")
    if missing:
        raise DataToolError(f"{len(missing)} GT image(s) have no LR where basicsr looks for it "
                            f"(flat in the LR folder, same base name and extension):\n  " + "\n  ".join(missing[:20]))
    return lines


def write_meta_info(lines: list[str], output: str | Path) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return output


def read_meta_info(path: str | Path) -> list[str]:
    """The image paths of a meta-info file, parsed like basicsr (first space-separated token)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip().split(" ")[0] for line in lines if line.strip()]


def check_meta_info(meta_file: str | Path, gt_dir: str | Path, lr_dir: str | Path | None = None,
                    scale: int | None = None, filename_tmpl: str = "{}") -> list[str]:
    """Open every listed image (and its LR); returns one problem per line, naming the path.

    With ``lr_dir`` and ``scale`` also checks GT size == LR size * scale.
    """
    problems = []
    for rel in read_meta_info(meta_file):
        try:
            gt = read_image(Path(gt_dir) / rel)
            if lr_dir is None:
                continue
            lr = read_image(Path(lr_dir) / lr_name_for(rel, filename_tmpl))
        except ImageReadError as err:
            problems.append(str(err))
            continue
        if scale is not None and gt.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
            problems.append(f"{Path(gt_dir) / rel}: GT {gt.shape[1]}x{gt.shape[0]} is not {scale}x its LR "
                            f"{lr.shape[1]}x{lr.shape[0]}")
    return problems
