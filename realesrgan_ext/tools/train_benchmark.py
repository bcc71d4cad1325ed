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
import os
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


# ---- a fine-tune recipe as it trains: seconds per iteration and peak memory, per precision ----------------
FINETUNE_CONFIGS: dict[str, dict[str, Any]] = {  # name -> train.speed (replacing the option file's)
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
}


@dataclass(frozen=True)
class FinetuneRow:
    name: str
    seconds_per_iter: float  # median
    seconds_range: tuple[float, float]
    cpu_seconds_per_iter: float  # median process CPU time (all threads): what a loaded machine cannot hide
    peak_rss_mib: float  # the whole process at its peak (Python, torch, the model, the step)
    step_rss_mib: float  # how much the training iterations added over the built model


def finetune_options(option_file: str | Path, speed: dict[str, Any], workdir: Path, vgg_file: Path,
                     pretrained: bool = True) -> dict[str, Any]:
    """The option file as BasicSR would pass it to the model, CPU, with ``train.speed = speed``.

    A torchvision-weights perceptual loss gets a random VGG19 file (timing does not depend on the
    values; nothing downloads); ``pretrained=False`` skips loading the starting weights.
    """
    import yaml

    opt = yaml.safe_load(Path(option_file).read_text())
    opt.update(num_gpu=0, dist=False, is_train=True, rank=0, world_size=1)
    opt["path"].update(models=str(workdir), training_states=str(workdir), resume_state=None)
    if not pretrained:
        opt["path"]["pretrain_network_g"] = None
    opt["train"]["speed"] = dict(speed)
    opt.pop("val", None)  # no validation is timed; the guardrails need none
    perceptual = opt["train"].get("perceptual_opt")
    if perceptual and perceptual.get("vgg_weights", "torchvision") == "torchvision":
        perceptual["vgg_weights_path"] = str(vgg_file)
    return opt


def _finetune_batches(opt: dict[str, Any], count: int = 2) -> list[dict[str, torch.Tensor]]:
    """HR crops (smooth random images) with their degradation kernels, as ``RealESRGANHRDataset`` gives."""
    from realesrgan_ext.data.degradation_kernels import sample_kernel_batch
    from realesrgan_ext.data.degradation_options import degradation_options_of

    train = opt["datasets"]["train"]
    size, batch = int(train.get("crop_size", 400)), int(train["batch_size_per_gpu"])
    options = degradation_options_of(opt)
    g = torch.Generator().manual_seed(0)
    smooth = [torch.nn.functional.interpolate(torch.rand(batch, 3, size // 8, size // 8, generator=g), size=size,
                                              mode="bilinear", align_corners=False) for _ in range(count)]
    return [{"gt": gt, **sample_kernel_batch(options, batch)} for gt in smooth]


def _rss_mib() -> float:
    """This process's resident memory now (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _time_finetune(option_file: str, speed: dict[str, Any], warmup: int, iterations: int, threads: int,
                   pretrained: bool) -> tuple[list[float], list[float], float, float]:
    """In a fresh process: wall and CPU seconds of each timed iteration, peak RSS and the RSS the
    iterations added."""
    import resource

    import realesrgan_ext

    torch.set_num_threads(threads)
    realesrgan_ext.register()
    from basicsr.models import build_model

    with random_vgg19_file() as vgg_file, tempfile.TemporaryDirectory() as workdir:
        opt = finetune_options(option_file, speed, Path(workdir), vgg_file, pretrained)
        batches = _finetune_batches(opt)
        torch.manual_seed(0)
        model = build_model(opt)
        built = _rss_mib()
        times, cpu_times = [], []
        first = int(opt["train"].get("net_d_init_iters", 0) or 0) + 1  # time joint steps, past a D-only warm-up
        for it in range(first, first + warmup + iterations):
            start, cpu_start = time.perf_counter(), time.process_time()
            model.feed_data(batches[it % len(batches)])
            model.optimize_parameters(it)
            if it >= first + warmup:
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return times, cpu_times, peak, peak - built


def run_finetune_benchmark(option_file: str | Path, names: list[str] | None = None, warmup: int = 1,
                           iterations: int = 5, threads: int = 2, pretrained: bool = True,
                           progress=print) -> list[FinetuneRow]:
    """Time each configuration of ``FINETUNE_CONFIGS`` in its own process (so each peak is its own)."""
    import multiprocessing

    names = names or list(FINETUNE_CONFIGS)
    unknown = [n for n in names if n not in FINETUNE_CONFIGS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; known: {list(FINETUNE_CONFIGS)}")
    rows = []
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for name in names:
            times, cpu, peak, step = pool.apply(_time_finetune, (str(option_file), FINETUNE_CONFIGS[name], warmup,
                                                                 iterations, threads, pretrained))
            rows.append(FinetuneRow(name, statistics.median(times), (min(times), max(times)), statistics.median(cpu),
                                    peak, step))
            progress(f"  {name}: {rows[-1].seconds_per_iter:.3f} s/iter, peak {peak:.0f} MiB")
    return rows


def format_finetune_table(rows: list[FinetuneRow], option_file: str | Path, iterations: int, threads: int) -> str:
    """The fine-tune result as printed (and committed as ``benchmarks/finetune_cpu.txt``)."""
    import yaml

    opt = yaml.safe_load(Path(option_file).read_text())
    train = opt["datasets"]["train"]
    head = (f"{Path(option_file).name}: {opt['network_g']['type']} from {opt['path'].get('pretrain_network_g')}, "
            f"batch {train['batch_size_per_gpu']} x {train.get('gt_size')}px (degraded from {train.get('crop_size')} "
            f"px crops), torch {torch.__version__}, {threads} threads; median of {iterations} iterations, "
            "each configuration in its own process")
    width = max(len("configuration"), *(len(r.name) for r in rows))
    lines = [head, f"{'configuration':<{width}}  s/iter  (fastest-slowest)  CPU s/iter  peak RSS MiB  "
                   "added by training MiB"]
    lines += [f"{r.name:<{width}}  {r.seconds_per_iter:6.3f}  ({r.seconds_range[0]:.3f}-{r.seconds_range[1]:.3f})  "
              f"{r.cpu_seconds_per_iter:10.3f}  {r.peak_rss_mib:12.0f}  {r.step_rss_mib:20.0f}" for r in rows]
    return "\n".join(lines)
