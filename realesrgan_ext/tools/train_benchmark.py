"""Seconds per training iteration: our ``AdversarialSRModel`` against BasicSR's stock ``ESRGANModel``.

Both models train the same networks (``RRDBGenerator`` + ``VGGDiscriminator``) with the ESRGAN
losses (L1 + VGG19 conv5_4 + relativistic GAN, EMA 0.999) on the same in-memory batches, so
the difference is the training step alone; data loading is the same code for both and is left
out. Every ``train.speed`` option is timed on its own and in the useful combinations. Rounds
alternate between configurations; each speed-up is the median over rounds of the stock model's
time in that round over the configuration's, so a slow drift of the machine cancels out, and
the lowest and highest per-round ratio show how far single measurements scatter. The VGG19
weights are random (torchvision layout, features only): timing does not depend on their values,
and nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

STOCK = "basicsr ESRGANModel (fp32)"
# name -> train.speed of our model; None = BasicSR's stock model
CONFIGS: dict[str, dict[str, Any] | None] = {
    STOCK: None,
    "ours fp32 (defaults)": {},
    "ours channels_last": {"channels_last": True},
    "ours optimizer_impl=foreach": {"optimizer_impl": "foreach"},
    "ours optimizer_impl=fused": {"optimizer_impl": "fused"},
    "ours grad_accum_steps=2": {"grad_accum_steps": 2},
    "ours bf16": {"precision": "bf16"},
    "ours bf16 + channels_last": {"precision": "bf16", "channels_last": True},
    "ours bf16 + channels_last + fused": {"precision": "bf16", "channels_last": True, "optimizer_impl": "fused"},
    "ours compile": {"compile": True},
    "ours bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True, "compile": True},
}


@dataclass(frozen=True)
class BenchmarkSettings:
    """Network size, batch and how long to measure."""

    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    d_feat: int = 64
    gt_size: int = 128  # the recipe's patch (esrgan_x4.yml); its batch of 16 would take minutes per iteration here
    batch: int = 2
    warmup: int = 1
    iterations: int = 1
    rounds: int = 9  # short rounds, many of them: each ratio pairs measurements taken seconds apart
    device: str = "cpu"


@dataclass(frozen=True)
class BenchmarkRow:
    name: str
    seconds_per_iter: float
    speedup_vs_stock: float  # median over rounds of (stock's time in the round / this one's)
    speedup_range: tuple[float, float]  # lowest and highest of those per-round ratios


def _features_only_vgg19(**_ignored: Any) -> torch.nn.Module:
    from torchvision.models import vgg

    module = torch.nn.Module()
    module.features = vgg.make_layers(vgg.cfgs["E"])
    return module


@contextlib.contextmanager
def random_vgg19_file() -> Iterator[Path]:
    """A random torchvision-layout VGG19 ``features`` file, also set as BasicSR's VGG weights."""
    from basicsr.archs import vgg_arch

    saved = vgg_arch.VGG_PRETRAIN_PATH, vgg_arch.vgg
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vgg19-random.pth"
        torch.save(_features_only_vgg19().state_dict(), path)
        vgg_arch.VGG_PRETRAIN_PATH = str(path)
        vgg_arch.vgg = type("FeaturesOnlyTorchvision", (), {"vgg19": staticmethod(_features_only_vgg19)})
        try:
            yield path
        finally:
            vgg_arch.VGG_PRETRAIN_PATH, vgg_arch.vgg = saved


def model_options(settings: BenchmarkSettings, speed: dict[str, Any] | None, vgg_file: Path,
                  workdir: Path) -> dict[str, Any]:
    """BasicSR options for our model with ``train.speed = speed``, or the stock one when None."""
    stock = speed is None
    losses = {
        "pixel_opt": {"type": "L1Loss", "loss_weight": 1e-2} if stock else
        {"type": "PixelLoss", "criterion": "l1", "loss_weight": 1e-2},
        "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1.0}, "style_weight": 0,
                           "perceptual_weight": 1.0} if stock else
        {"type": "VGGPerceptualLoss", "layer_weights": {"conv5_4": 1.0}, "perceptual_weight": 1.0,
         "vgg_weights": "torchvision", "vgg_weights_path": str(vgg_file)},
        "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 5e-3} if stock else
        {"type": "RelativisticAverageGANLoss", "loss_weight": 5e-3},
    }
    adam = {"type": "Adam", "lr": 1e-4, "betas": [0.9, 0.99]}
    train = {"ema_decay": 0.999, "optim_g": dict(adam), "optim_d": dict(adam),
             "scheduler": {"type": "MultiStepLR", "milestones": [10**9], "gamma": 0.5}, **losses}
    if not stock:
        train["speed"] = dict(speed)
    return {
        "name": "benchmark", "model_type": "ESRGANModel" if stock else "AdversarialSRModel", "scale": 4,
        "num_gpu": 0 if settings.device == "cpu" else 1, "dist": False, "is_train": True, "rank": 0,
        "world_size": 1,
        "network_g": {"type": "RRDBGenerator", "scale": 4, "num_feat": settings.num_feat,
                      "num_block": settings.num_block, "num_grow_ch": settings.num_grow_ch},
        "network_d": {"type": "VGGDiscriminator", "num_feat": settings.d_feat, "input_size": settings.gt_size},
        "path": {"models": str(workdir), "training_states": str(workdir), "pretrain_network_g": None},
        "train": train,
    }


def _batches(settings: BenchmarkSettings, count: int = 2) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    lq = settings.gt_size // 4
    return [{"lq": torch.rand(settings.batch, 3, lq, lq, generator=g),
             "gt": torch.rand(settings.batch, 3, settings.gt_size, settings.gt_size, generator=g)}
            for _ in range(count)]


class _Run:
    """One model being timed; ``advance`` runs iterations and returns seconds per iteration."""

    def __init__(self, opt: dict[str, Any], batches: list[dict[str, torch.Tensor]]) -> None:
        from basicsr.models import build_model

        self.model, self.batches, self.iter = build_model(opt), batches, 0

    def advance(self, iterations: int) -> float:
        sync = torch.cuda.synchronize if self.model.device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(iterations):
            self.iter += 1
            self.model.feed_data(self.batches[self.iter % len(self.batches)])
            self.model.optimize_parameters(self.iter)
        sync()
        return (time.perf_counter() - start) / iterations


def run_benchmark(settings: BenchmarkSettings, names: list[str] | None = None,
                  progress=print) -> list[BenchmarkRow]:
    """Time each configuration (the stock model always included); ratios are stock s/iter / ours."""
    import realesrgan_ext

    realesrgan_ext.register()
    names = [STOCK] + [n for n in (names or list(CONFIGS)) if n != STOCK]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; known: {list(CONFIGS)}")
    batches = _batches(settings)
    with random_vgg19_file() as vgg_file, tempfile.TemporaryDirectory() as workdir:
        runs = {}
        for name in names:
            torch.manual_seed(0)
            runs[name] = _Run(model_options(settings, CONFIGS[name], vgg_file, Path(workdir)), batches)
            runs[name].advance(settings.warmup)  # compilation, allocator and oneDNN caches warm up here
            progress(f"  built and warmed up: {name}")
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(settings.rounds):
            for name in names:
                times[name].append(runs[name].advance(settings.iterations))
            progress(f"  round {r + 1}/{settings.rounds} done")
    rows = []
    for name in names:
        ratios = [stock / ours for stock, ours in zip(times[STOCK], times[name], strict=True)]
        rows.append(BenchmarkRow(name, statistics.median(times[name]), statistics.median(ratios),
                                 (min(ratios), max(ratios))))
    return rows


def format_table(rows: list[BenchmarkRow], settings: BenchmarkSettings) -> str:
    """The result as printed (and committed as ``benchmarks/train_cpu.txt``)."""
    head = (f"RRDB {settings.num_feat}/{settings.num_block}/{settings.num_grow_ch} x4, VGG D {settings.d_feat}, "
            f"batch {settings.batch} x {settings.gt_size}px, device {settings.device}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"median of {settings.rounds} rounds x {settings.iterations} iterations")
    width = max(len(r.name) for r in rows)
    lines = [head, f"{'configuration':<{width}}  s/iter  speed-up vs stock (median, lowest-highest round)"]
    lines += [f"{r.name:<{width}}  {r.seconds_per_iter:6.3f}  {r.speedup_vs_stock:5.2f}x  "
              f"{r.speedup_range[0]:.2f}-{r.speedup_range[1]:.2f}x" for r in rows]
    return "\n".join(lines)
