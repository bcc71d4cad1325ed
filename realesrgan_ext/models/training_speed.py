"""Training speed options, read from ``train.speed`` in the option file.

Everything here is off by default where it could change results: ``precision: fp32``,
``channels_last: false``, ``compile: false``, ``optimizer_impl: default`` (torch's own choice)
and ``grad_accum_steps: 1`` reproduce a run without the ``speed`` block bit for bit.

- ``precision``: ``bf16`` runs forward passes and losses under ``torch.autocast`` (CPU and
  CUDA); ``fp16`` does the same on CUDA with a ``GradScaler`` per optimizer (fp16 gradients
  underflow without one); ``auto`` is bf16 where the device computes it natively (a CPU with
  AVX512-BF16 / AMX, a CUDA GPU with bf16) and fp32 elsewhere: emulated bf16 convolutions on an
  AVX2-only CPU are some 40 times slower than fp32 ones.
- ``channels_last``: networks and their inputs in NHWC, the layout tensor cores and oneDNN prefer.
- ``compile``: ``true`` or a dict of ``torch.compile`` arguments (``mode``, ``backend``,
  ``dynamic``); the generator and discriminator are compiled in place (``nn.Module.compile``),
  so checkpoint keys do not change.
- ``optimizer_impl``: ``fused`` / ``foreach`` / ``for_loop`` picks the optimizer kernel where
  the ``torch.optim`` class offers it.
- ``grad_accum_steps``: N iterations (micro-batches) per optimizer step, each loss divided by N;
  ``total_iter`` and scheduler milestones still count iterations.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Any

import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
OPTIMIZER_IMPLS = ("default", "fused", "foreach", "for_loop")
SPEED_KEYS = ("precision", "channels_last", "compile", "optimizer_impl", "grad_accum_steps")


@dataclass(frozen=True)
class TrainingSpeed:
    """The parsed ``train.speed`` block and how each option is applied."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: dict[str, Any] | None = None
    optimizer_impl: str = "default"
    grad_accum_steps: int = 1

    @classmethod
    def from_options(cls, speed_opt: dict[str, Any] | None, device: str | torch.device = "cpu") -> TrainingSpeed:
        """Validate ``train.speed`` (``precision: auto`` resolved for ``device``); a wrong key or value
        is an error that names it."""
        speed_opt = dict(speed_opt or {})
        unknown = sorted(set(speed_opt) - set(SPEED_KEYS))
        if unknown:
            raise ValueError(f"train.speed: unknown key(s) {unknown}; known: {list(SPEED_KEYS)}")
        precision = speed_opt.get("precision") or "fp32"
        if precision not in (*PRECISIONS, "auto"):
            raise ValueError(f"train.speed.precision: {precision!r}, expected one of {[*PRECISIONS, 'auto']}")
        if precision == "auto":
            precision = native_precision(device)
        impl = speed_opt.get("optimizer_impl") or "default"
        if impl not in OPTIMIZER_IMPLS:
            raise ValueError(f"train.speed.optimizer_impl: {impl!r}, expected one of {list(OPTIMIZER_IMPLS)}")
        steps = speed_opt.get("grad_accum_steps", 1)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"train.speed.grad_accum_steps: {steps!r}, expected an integer >= 1")
        return cls(precision=precision, channels_last=bool(speed_opt.get("channels_last", False)),
                   compile=_compile_kwargs(speed_opt.get("compile", False)), optimizer_impl=impl,
                   grad_accum_steps=steps)

    def check_device(self, device: torch.device) -> None:
        """fp16 training needs CUDA (CPU autocast has no fp16 gradient scaling worth using)."""
        if self.precision == "fp16" and device.type != "cuda":
            raise ValueError("train.speed.precision: fp16 needs a CUDA device; use bf16 on CPU")

    def prepare_network(self, net: torch.nn.Module) -> torch.nn.Module:
        """channels_last and in-place compilation, before any DDP wrapping."""
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if self.compile is not None:
            net.compile(**self.compile)
        return net

    def prepare_frozen(self, module: torch.nn.Module) -> torch.nn.Module:
        """Store the frozen convolution / linear layers of a loss (a perceptual loss's VGG) in the
        autocast dtype: autocast re-casts weights that need no gradient at every call (its cache
        keeps only trainable leaves), and a copy cast once gives the same numbers without the casts
        (5 % of a bf16 ESRGAN step on CPU). fp32: unchanged. The losses run under ``autocast``.
        """
        dtype = PRECISIONS[self.precision]
        if dtype is not None:
            for layer in module.modules():
                if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)) and not any(
                        p.requires_grad for p in layer.parameters()):
                    layer.to(dtype)
        return module

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the networks' memory format."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes and losses (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=PRECISIONS[self.precision])

    def make_scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        """A gradient scaler for fp16 (one per optimizer), None otherwise."""
        return torch.amp.GradScaler(device.type) if self.precision == "fp16" else None

    def optimizer_kwargs(self, optimizer_class: type) -> dict[str, bool]:
        """``fused=True`` / ``foreach=True|False`` where ``optimizer_class`` accepts it."""
        if self.optimizer_impl == "default":
            return {}
        params = inspect.signature(optimizer_class).parameters
        key, value = {"fused": ("fused", True), "foreach": ("foreach", True),
                      "for_loop": ("foreach", False)}[self.optimizer_impl]
        if key not in params:
            raise ValueError(f"train.speed.optimizer_impl: {optimizer_class.__name__} has no {key!r} option")
        return {key: value}

    def is_step_iteration(self, current_iter: int) -> bool:
        """Whether this iteration ends a gradient-accumulation window (then the optimizer steps)."""
        return current_iter % self.grad_accum_steps == 0


def native_precision(device: str | torch.device) -> str:
    """``'bf16'`` where ``device`` computes bf16 natively, else ``'fp32'``."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def _compile_kwargs(value: Any) -> dict[str, Any] | None:
    if value is False or value is None:
        return None
    if value is True:
        return {}
    if isinstance(value, dict):
        allowed = set(inspect.signature(torch.compile).parameters) - {"model"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"train.speed.compile: unknown torch.compile argument(s) {unknown}")
        return dict(value)
    raise ValueError(f"train.speed.compile: {value!r}, expected true/false or a dict of torch.compile arguments")
