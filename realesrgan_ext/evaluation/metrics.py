"""The scores of an evaluation: what each measures, which way is better, and how it is computed.

Full-reference metrics compare a model's output with the HR photo, as BasicSR's test script
does: PSNR and SSIM on the Y channel of MATLAB's YCbCr (``test_y_channel``), with ``scale``
pixels cut from every edge (``crop_border``), and the ST-LPIPS perceptual distance
(``metrics/stlpips_metric.py``) on the same crop. The no-reference metric, NIQE, scores an
output alone (real low-resolution photos have no HR); BasicSR ships its pristine-model
parameters, so nothing is downloaded.

Every metric takes BasicSR's metric images: ``HxWx3`` BGR uint8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NIQE_BLOCK = 96  # basicsr's NIQE cuts the Y channel into 96 px blocks
NIQE_MIN_BLOCKS = 2  # one block leaves its covariance undefined (basicsr fails: "SVD did not converge")


@dataclass(frozen=True)
class Metric:
    """One column of the report: ``key`` in the CSV, ``title`` in tables, ``higher_is_better``."""

    key: str
    title: str
    higher_is_better: bool
    unit: str = ""
    digits: int = 4

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def format(self, value: float | None) -> str:
        return "" if value is None or np.isnan(value) else f"{value:.{self.digits}f}"


PSNR_Y = Metric("psnr_y", "PSNR-Y", True, "dB", 2)
SSIM_Y = Metric("ssim_y", "SSIM-Y", True)
STLPIPS = Metric("stlpips", "ST-LPIPS", False)
NIQE = Metric("niqe", "NIQE", False, digits=3)
FULL_REFERENCE = (PSNR_Y, SSIM_Y, STLPIPS)
NO_REFERENCE = (NIQE,)
METRICS = {m.key: m for m in (*FULL_REFERENCE, *NO_REFERENCE)}


def _basicsr_metrics() -> tuple[Callable, Callable, Callable]:
    from realesrgan_ext import compat

    compat.apply()  # basicsr imports only once patched
    from basicsr.metrics.niqe import calculate_niqe
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

    return calculate_psnr, calculate_ssim, calculate_niqe


def full_reference_scores(output: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
    """PSNR-Y, SSIM-Y and ST-LPIPS of ``output`` against ``hr`` (same size), ``scale`` px border cut."""
    from realesrgan_ext.metrics.stlpips_metric import calculate_stlpips

    if output.shape != hr.shape:
        raise ValueError(f"output {output.shape} and HR {hr.shape} differ in size")
    calculate_psnr, calculate_ssim, _ = _basicsr_metrics()
    return {
        PSNR_Y.key: float(calculate_psnr(output, hr, crop_border=scale, test_y_channel=True)),
        SSIM_Y.key: float(calculate_ssim(output, hr, crop_border=scale, test_y_channel=True)),
        STLPIPS.key: calculate_stlpips(output, hr, crop_border=scale),
    }


def niqe_fits(height: int, width: int) -> bool:
    """Whether basicsr's NIQE can score an image of this size (at least two 96 px blocks)."""
    return (height // NIQE_BLOCK) * (width // NIQE_BLOCK) >= NIQE_MIN_BLOCKS


def no_reference_scores(output: np.ndarray) -> dict[str, float]:
    """NIQE of ``output`` (lower is more natural); NaN when the image is too small for it."""
    if not niqe_fits(*output.shape[:2]):
        return {NIQE.key: float("nan")}
    _, _, calculate_niqe = _basicsr_metrics()
    return {NIQE.key: float(calculate_niqe(output, crop_border=0))}
