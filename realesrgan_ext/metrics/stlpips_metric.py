"""ST-LPIPS: a learned perceptual distance for ``val.metrics``, lower is better.

LPIPS compares deep features of two images, so a sharp GAN output that PSNR punishes for
every misplaced texture pixel is judged closer to what people see. ST-LPIPS (Ghildyal & Liu,
ECCV 2022) is LPIPS on anti-aliased, shift-tolerant backbones, so a sub-pixel shift of the SR
image is not counted as a difference. The PyPI package ``stlpips-pytorch`` ships the *whole*
network (backbone and calibration layers, ``weights/vST0.0/<net>_shift_tolerant.pth``), so nothing
is downloaded; the weights are loaded checking every key (the package's own loader is lenient and would
leave a layer random if a key did not match).

Option file::

    val:
      metrics:
        stlpips:
          type: calculate_stlpips
          crop_border: 4
          better: lower          # BasicSR keeps the highest value as "best" unless told
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from realesrgan_ext.registry import register_part

PACKAGE = "stlpips_pytorch"
PACKAGE_INSTALL = "pip install stlpips-pytorch==0.0.2 torchsummary==1.5.1 ipython==8.12.3"  # requirements.txt
NETS = ("alex", "vgg")
MIN_SIZE = {"alex": 21, "vgg": 18}  # smallest side the backbone's reflect padding accepts (measured)
VARIANT = "shift_tolerant"
INPUT_ORDERS = ("HWC", "CHW")


def stlpips_weights_path(net: str) -> Path:
    """The package's bundled weight file for backbone ``net`` (found without importing the package)."""
    if net not in NETS:
        raise ValueError(f"calculate_stlpips: net must be one of {NETS}, got {net!r}")
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"calculate_stlpips needs the {PACKAGE} package: {PACKAGE_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "vST0.0" / f"{net}_{VARIANT}.pth"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing from the {PACKAGE} install; reinstall it ({PACKAGE_INSTALL})")
    return path


@lru_cache(maxsize=4)
def stlpips_network(net: str = "alex", device: str = "cpu") -> torch.nn.Module:
    """The package's ST-LPIPS module with its shipped weights, in eval mode (built once per net/device)."""
    weights = stlpips_weights_path(net)
    try:
        from stlpips_pytorch.stlpips import LPIPS
    except ModuleNotFoundError as err:  # its modules import torchsummary and IPython, undeclared
        raise ModuleNotFoundError(f"calculate_stlpips: {PACKAGE} needs {err.name!r}: {PACKAGE_INSTALL}") from err

    model = LPIPS(pretrained=False, net=net, variant=VARIANT, verbose=False)
    result = model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=False)
    # ``lins.K`` is a second name of ``linK`` (the same module, listed in a ModuleList): not missing
    missing = [k for k in result.missing_keys if not k.startswith("lins.")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"{weights}: does not fit ST-LPIPS {net}: missing {missing}, "
                           f"unexpected {result.unexpected_keys}")
    return model.eval().requires_grad_(False).to(device)


def _to_tensor(img: np.ndarray, input_order: str, crop_border: int, name: str) -> torch.Tensor:
    """A BasicSR metric image (BGR or gray, 0-255) as a 1x3xHxW RGB tensor in [-1, 1]."""
    img = np.asarray(img)
    if input_order == "CHW" and img.ndim == 3:
        img = img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"calculate_stlpips: {name} must be HxW, HxWx1 or HxWx3 ({input_order}), got {img.shape}")
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., ::-1]  # BasicSR images are BGR
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    return tensor / 127.5 - 1.0


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@register_part("metric")
def calculate_stlpips(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = "HWC",
                      net: str = "alex", device: str = "auto", better: str | None = None) -> float:
    """ST-LPIPS distance between two images of the same size (0 = identical; lower is better).

    Args:
        img, img2: BasicSR metric images: uint8 (or float) in [0, 255], BGR or gray.
        crop_border: pixels cut from each edge before comparing (as PSNR's ``crop_border``).
        input_order: ``HWC`` or ``CHW``.
        net: backbone, ``alex`` (default, 10 MB) or ``vgg`` (59 MB, slower).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``.
        better: must be ``lower`` when given in an option file, which BasicSR's best-metric
            tracking reads (its default, ``higher``, would keep the worst model as "best").
    """
    if better is not None and better != "lower":
        raise ValueError(f"calculate_stlpips: a distance is better when lower; set better: lower, not {better!r}")
    if input_order not in INPUT_ORDERS:
        raise ValueError(f"calculate_stlpips: input_order must be one of {INPUT_ORDERS}, got {input_order!r}")
    a = _to_tensor(img, input_order, crop_border, "img")
    b = _to_tensor(img2, input_order, crop_border, "img2")
    if a.shape != b.shape:
        raise ValueError(f"calculate_stlpips: image shapes differ: {tuple(a.shape[2:])} vs {tuple(b.shape[2:])}")
    if min(a.shape[2:]) < MIN_SIZE.get(net, 0):
        raise ValueError(f"calculate_stlpips: images of {tuple(a.shape[2:])} px (after crop_border) are too small "
                         f"for the {net} backbone: at least {MIN_SIZE[net]} px per side")
    model = stlpips_network(net, _resolve_device(device))
    param = next(model.parameters())
    with torch.inference_mode():
        return float(model(a.to(param.device), b.to(param.device)).item())
