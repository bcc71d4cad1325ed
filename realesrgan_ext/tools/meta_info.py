"""Meta-info files: the list of images a dataset reads instead of scanning a folder.

Format (BasicSR's): one GT image path per line, relative to the GT folder, '/' separators.
Readers keep the first space-separated token of a line, so paths may not contain spaces.

* ``PairedLRHRDataset`` (``meta_info_file``, this package): LR = the image with the same
  relative folder and name (through ``filename_tmpl``, default '{}') in ``dataroot_lq``, any
  image extension.
* basicsr's ``PairedImageDataset`` (``paired_paths_from_meta_info_file``) looks for the LR
  *flat* in ``dataroot_lq``: ``filename_tmpl.format(stem) + ext`` of the GT's file name, same
  extension. For a flat folder with equal extensions both rules agree.
* ``RealESRGANDataset`` (``meta_info``): GT path = ``dataroot_gt / line``.

``paired_meta_info`` checks that every GT has its LR under this package's rule and reports
whether the set also works with basicsr's flat rule.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from realesrgan_ext.data.image_io import ImageReadError, read_image
from realesrgan_ext.tools.image_files import IMAGE_EXTENSIONS, DataToolError, list_images


def lr_candidates(gt_rel: str, filename_tmpl: str = "{}") -> list[str]:
    """LR paths (relative to the LR root) that pair with ``gt_rel``: same folder and stem, any extension."""
    folder, name = posixpath.split(gt_rel)
    stem, ext = posixpath.splitext(name)
    base = posixpath.join(folder, filename_tmpl.format(stem))
    return [base + ext] + [base + other for other in sorted(IMAGE_EXTENSIONS) if other != ext.lower()]


def basicsr_lr_name(gt_rel: str, filename_tmpl: str = "{}") -> str:
    """Where basicsr's ``paired_paths_from_meta_info_file`` looks for the LR of ``gt_rel``."""
    stem, ext = posixpath.splitext(posixpath.basename(gt_rel))
    return f"{filename_tmpl.format(stem)}{ext}"


def find_lr(lr_dir: str | Path, gt_rel: str, filename_tmpl: str = "{}") -> Path | None:
    """The LR file paired with ``gt_rel`` under ``lr_dir``, or None."""
    for rel in lr_candidates(gt_rel, filename_tmpl):
        if (Path(lr_dir) / rel).is_file():
            return Path(lr_dir) / rel
    return None


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


def paired_meta_info(gt_dir: str | Path, lr_dir: str | Path, filename_tmpl: str = "{}") -> tuple[list[str], bool]:
    """Meta-info lines for GT/LR pairs, and whether basicsr's flat LR lookup would find them too.

    Every GT needs an LR at the same relative path and name (any extension); the error lists
    those that have none.
    """
    lines = folder_meta_info(gt_dir)
    missing = [f"{rel}: no LR {Path(lr_dir) / lr_candidates(rel, filename_tmpl)[0]} (any image extension)"
               for rel in lines if find_lr(lr_dir, rel, filename_tmpl) is None]
    if missing:
        shown = "\n  ".join(missing[:20])
        raise DataToolError(f"{len(missing)} GT image(s) have no LR partner in {lr_dir}:\n  {shown}")
    flat_names = [basicsr_lr_name(rel, filename_tmpl) for rel in lines]
    basicsr_ok = (len(set(flat_names)) == len(flat_names)
                  and all((Path(lr_dir) / name).is_file() for name in flat_names))
    return lines, basicsr_ok


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
            lr_path = find_lr(lr_dir, rel, filename_tmpl)
            if lr_path is None:
                problems.append(f"{Path(gt_dir) / rel}: no LR partner in {lr_dir}")
                continue
            lr = read_image(lr_path)
        except ImageReadError as err:
            problems.append(str(err))
            continue
        if scale is not None and gt.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
            problems.append(f"{Path(gt_dir) / rel}: GT {gt.shape[1]}x{gt.shape[0]} is not {scale}x its LR "
                            f"{lr.shape[1]}x{lr.shape[0]}")
    return problems
