"""Tiny data builders shared by the tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np


def smooth_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic uint8 image with structure at several scales (not plain noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 4, 2), max(w // 4, 2), channels), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return img if channels > 1 else img[:, :, None]


def tiny_rrdb(scale: int = 4, seed: int = 0):
    """A tiny random RRDB (8 features, 1 block) whose output spans 0..255 and follows its input.

    A fresh one of this size draws its convolutions 0.1x small (ESRGAN's initialisation): its image
    is nearly black (0..38, or all 0 for scale 4 and seed 0), and "equals the image path" would hold
    for almost any mistake. Its convolutions are scaled up 3x and ``conv_last`` biased to mid-gray."""
    import torch

    from realesrgan_ext.archs.rrdb_arch import RRDBGenerator

    torch.manual_seed(seed)
    net = RRDBGenerator(num_feat=8, num_block=1, num_grow_ch=4, scale=scale)
    with torch.no_grad():
        for weight in (p for p in net.parameters() if p.dim() == 4):
            weight.mul_(3)
        net.conv_last.bias.fill_(0.5)
    return net


def write_pair_folders(root: Path, names: list[str], hr_size: int = 32, scale: int = 4,
                       lr_ext: str = ".png") -> tuple[Path, Path]:
    """``root/high_res`` and ``root/low_res`` with bicubic-downscaled partners."""
    hr_dir, lr_dir = root / "high_res", root / "low_res"
    for i, name in enumerate(names):
        hr = smooth_image(hr_size, hr_size, seed=i)
        lr = cv2.resize(hr, (hr_size // scale, hr_size // scale), interpolation=cv2.INTER_AREA)
        (hr_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (lr_dir / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(hr_dir / f"{name}.png"), hr)
        cv2.imwrite(str(lr_dir / f"{name}{lr_ext}"), lr)
    return hr_dir, lr_dir


def edited_ncnn_layers(files: tuple[Path, Path], old: str, new: str) -> list:
    """An ncnn model's layers with the first ``old`` in its ``.param`` text replaced by ``new``."""
    from realesrgan_ext.inference.ncnn_import import load_bin, parse_param

    param, weights = files
    text = param.read_text()
    assert old in text
    return load_bin(parse_param(text.replace(old, new, 1)), weights.read_bytes())


def ncnn_runtime_output(param: Path, weights: Path, chw: np.ndarray) -> np.ndarray:
    """What the ncnn runtime itself computes for a CHW float image (CPU, fp32 throughout), as
    realesrgan-ncnn-vulkan feeds it (RGB in [0, 1]); skips the test without the ``ncnn`` package."""
    import pytest

    from realesrgan_ext.inference.ncnn_import import io_blob_names, read_param

    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.num_threads = 1
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights)) == 0
    in_blob, out_blob = io_blob_names(read_param(param))
    extractor = net.create_extractor()
    chw = np.ascontiguousarray(chw)  # ncnn.Mat wraps this buffer without copying: keep it alive
    extractor.input(in_blob, ncnn.Mat(chw))
    ret, out = extractor.extract(out_blob)
    assert ret == 0
    return np.array(out)


def run_train(root: Path, opt_path: Path, *args: str, timeout: int = 600) -> str:
    """``python train.py -opt OPT ARGS`` in ``root`` (a copy of train.py is there); its output, or fail with it."""
    proc = subprocess.run([sys.executable, "train.py", "-opt", str(opt_path), *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def read_log(exp: Path) -> str:
    """Every ``train_*.log`` of an experiment folder, in order."""
    return "\n".join(p.read_text() for p in sorted(exp.glob("train_*.log")))


# Real-ESRGAN's published option layout (xinntao/Real-ESRGAN options/*.yml), values as published.
KERNELS = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
REAL_ESRGAN_PIPELINE = {  # top level, read by its models
    "resize_prob": [0.2, 0.7, 0.1], "resize_range": [0.15, 1.5], "gaussian_noise_prob": 0.5,
    "noise_range": [1, 30], "poisson_scale_range": [0.05, 3], "gray_noise_prob": 0.4, "jpeg_range": [30, 95],
    "second_blur_prob": 0.8, "resize_prob2": [0.3, 0.4, 0.3], "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5, "noise_range2": [1, 25], "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4, "jpeg_range2": [30, 95]}
REAL_ESRGAN_KERNELS = {  # datasets.train, read by its RealESRGANDataset
    "blur_kernel_size": 21, "kernel_list": KERNELS, "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob": 0.1, "blur_sigma": [0.2, 3], "betag_range": [0.5, 4], "betap_range": [1, 2],
    "blur_kernel_size2": 21, "kernel_list2": KERNELS, "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob2": 0.1, "blur_sigma2": [0.2, 1.5], "betag_range2": [0.5, 4], "betap_range2": [1, 2],
    "final_sinc_prob": 0.8}
PUBLISHED_FILES = ("train_realesrnet_x4plus", "train_realesrgan_x4plus", "train_realesrnet_x2plus",
                   "train_realesrgan_x2plus", "finetune_realesrgan_x4plus", "finetune_realesrgan_x4plus_pairdata")


def real_esrgan_options(file: str, data: dict, pretrain: dict | None = None, gt_size: int = 32, batch: int = 2,
                        tiny_net: dict | None = None, perceptual: dict | None = None) -> dict:
    """The option dict of Real-ESRGAN's published ``file``, laid out as published, with only what a
    user edits changed: the data paths (``data``: ``dataroot_gt``, ``meta_info``, ``dataroot_lq``),
    ``path.pretrain_network_*`` (``pretrain``; ``~`` when not given), ``num_gpu: 0`` and the sizes
    (``gt_size``, batch, ``queue_size``, iterations, and ``tiny_net`` merged into the networks).
    ``perceptual``: replaces the published ``perceptual_opt`` (its VGG19 needs weights)."""
    gan, paired = "realesrgan" in file, file.endswith("pairdata")
    scale = 2 if file.endswith("x2plus") else 4
    opt = {"name": file, "model_type": "RealESRGANModel" if gan else "RealESRNetModel", "scale": scale,
           "num_gpu": 0, "manual_seed": 0}
    if gan:
        opt.update(l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False)
    else:
        opt["gt_usm"] = True
    if paired:
        opt["high_order_degradation"] = False
    else:
        opt.update(REAL_ESRGAN_PIPELINE, gt_size=gt_size, queue_size=2 * batch)
    train_set = {"name": "DF2K+OST", "type": "RealESRGANPairedDataset" if paired else "RealESRGANDataset",
                 **data, "io_backend": {"type": "disk"}}
    if not paired:
        train_set.update(REAL_ESRGAN_KERNELS)
    train_set.update(gt_size=gt_size, use_hflip=True, use_rot=False, use_shuffle=True, num_worker_per_gpu=0,
                     batch_size_per_gpu=batch, dataset_enlarge_ratio=1, prefetch_mode=None)
    opt["datasets"] = {"train": train_set}
    opt["network_g"] = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 23,
                        "num_grow_ch": 32, **(tiny_net or {})}
    if scale == 2:
        opt["network_g"]["scale"] = 2
    if gan:
        opt["network_d"] = {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 64, "skip_connection": True,
                            **({"num_feat": tiny_net["num_feat"]} if tiny_net else {})}
    opt["path"] = {"pretrain_network_g": None, "param_key_g": "params_ema",
                   "strict_load_g": file != "train_realesrnet_x2plus", "resume_state": None}
    if file.startswith("finetune"):
        opt["path"].update(pretrain_network_d=None, param_key_d="params", strict_load_d=True)
    opt["path"].update(pretrain or {})
    adam = {"type": "Adam", "lr": 1e-4 if gan else 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]}
    opt["train"] = {"ema_decay": 0.999, "optim_g": dict(adam),
                    "scheduler": {"type": "MultiStepLR", "milestones": [400000], "gamma": 0.5},
                    "total_iter": 2, "warmup_iter": -1,
                    "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}}
    if gan:
        opt["train"]["optim_d"] = dict(adam)
        opt["train"]["perceptual_opt"] = perceptual or {
            "type": "PerceptualLoss", "layer_weights": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1, "conv4_4": 1,
                                                        "conv5_4": 1},
            "vgg_type": "vgg19", "use_input_norm": True, "perceptual_weight": 1.0, "style_weight": 0,
            "range_norm": False, "criterion": "l1"}
        opt["train"]["gan_opt"] = {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0,
                                   "fake_label_val": 0.0, "loss_weight": 0.1}
        opt["train"].update(net_d_iters=1, net_d_init_iters=0)
    opt["logger"] = {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False,
                     "wandb": {"project": None, "resume_id": None}}
    opt["dist_params"] = {"backend": "nccl", "port": 29500}
    return opt


def write_hr_folder(root: Path, sizes: list[tuple[int, int]]) -> dict:
    """HR images of ``sizes`` (h, w) and a Real-ESRGAN meta-info list; the dataset keys pointing at them."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(root / f"hr{i}.png"), smooth_image(h, w, seed=10 + i))
        names.append(f"hr{i}.png")
    (root / "meta_info.txt").write_text("\n".join(names) + "\n")
    return {"dataroot_gt": str(root), "meta_info": str(root / "meta_info.txt")}


def load_script(name: str):
    """``scripts/<name>.py`` imported as a fresh module, for its ``main``."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_10_bit_ramp(path, frames=2, width=64, height=16):
    """A 10-bit (yuv420p10le) clip of a gray ramp over its pixels (1024 levels): more than 8 bits hold."""
    import av

    ramp = np.linspace(0, 65535, width * height).reshape(height, width, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        for i in range(frames):
            pixels = np.broadcast_to(ramp * (1 - 0.1 * i), (height, width, 3)).astype(np.uint16)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb48le").reformat(format="yuv420p10le")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
