"""Guardrails for fine-tuning, inside the model class (BasicSR's training loop is unchanged).

A fine-tune can silently make a strong model worse. Three options of the ``val`` section guard it:

- ``val_at_start`` (default: on when ``path.pretrain_network_g`` is set, i.e. when fine-tuning):
  the starting model is validated as iteration 0, so its scores are the baseline, logged like
  any validation (text log, tensorboard step 0, ``visualization/*_0.png``, the training plots).
  BasicSR's loop calls ``validation`` first at ``val_freq``; the starting weights are kept in
  memory until then and swapped in for that one pass.
- ``keep_best: <metric>`` (a key of ``val.metrics``): the best checkpoint by that metric on the
  first validation set, the baseline included, is ``models/net_g_best.pth`` with its record
  ``models/net_g_best.json`` (``best_checkpoint``), next to the periodic and latest ones.
- ``collapse_guard: true`` or a mapping of bounds (``collapse_guard``): when the generator's
  output on a validation set has lost its variance, turned gray or drifted in colour, training
  stops with ``TrainingCollapse``, naming the iteration and the last good checkpoint (the best
  one, or ``net_g_last_good.pth`` without ``keep_best``), which is never overwritten by a bad one.

A model class takes these by listing ``TrainingGuardrails`` before BasicSR's ``SRModel`` in its
bases, calling ``init_guardrails()`` at the end of ``init_training_settings`` and adding
``option_conflicts`` of this class to its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from basicsr.utils import get_root_logger

from realesrgan_ext.models.best_checkpoint import BEST_LABEL, BestRecord, is_improvement, metric_direction
from realesrgan_ext.models.checkpoint_fit import checkpoint_mismatch
from realesrgan_ext.models.collapse_guard import CollapseGuardOptions, OutputCheck

LAST_GOOD_LABEL = "last_good"  # models/net_g_last_good.pth: the guard's checkpoint without keep_best
BASELINE_LOG = "Baseline validation (iteration 0): the starting model"  # read by training_plot_logs


class TrainingCollapse(RuntimeError):
    """The collapse guard stopped training; the message names the iteration and the last good checkpoint."""


def validation_set_names(opt: dict[str, Any]) -> list[str]:
    """Names of the validation sets, in option-file order (``datasets.val``, ``val_2``, ...)."""
    datasets = opt.get("datasets") or {}
    return [str((d or {}).get("name", phase)) for phase, d in datasets.items() if str(phase).startswith("val")]


def guardrail_problems(opt: dict[str, Any]) -> list[str]:
    """Problems of the guardrail keys of ``val`` (for ``option_validation``), one message each."""
    val = opt.get("val") or {}
    if not isinstance(val, dict):
        return []
    problems = []
    try:
        guard = CollapseGuardOptions.from_options(val.get("collapse_guard"))
    except ValueError as error:
        problems.append(str(error))
        guard = None
    keep, metrics = val.get("keep_best"), val.get("metrics") or {}
    if keep is not None:
        if not isinstance(keep, str) or keep not in metrics:
            problems.append(f"val.keep_best: {keep!r} is not a metric of val.metrics (configured: {sorted(metrics)})")
        else:
            try:
                metric_direction(metrics[keep])
            except ValueError as error:
                problems.append(f"val.metrics.{keep}.{error}")
    at_start = val.get("val_at_start")
    if at_start is not None and not isinstance(at_start, bool):
        problems.append(f"val.val_at_start: expected true or false, got {at_start!r}")
    if (keep is not None or guard is not None or at_start) and not validation_set_names(opt):
        problems.append("val: keep_best, collapse_guard and val_at_start need a validation set (datasets.val)")
    return problems


class TrainingGuardrails:
    """Mixin for BasicSR ``SRModel`` subclasses: baseline at iteration 0, keep-best, collapse guard."""

    option_keys: dict[str, frozenset[str]] = {"val": frozenset({"val_at_start", "keep_best", "collapse_guard"})}

    @classmethod
    def option_conflicts(cls, opt: dict[str, Any]) -> list[str]:
        return guardrail_problems(opt)

    # ---- set-up ------------------------------------------------------------------------------
    def init_guardrails(self) -> None:
        """Read the options; keep the starting weights for the baseline. Call once the weights are loaded."""
        val = self.opt.get("val") or {}
        self.collapse_bounds = CollapseGuardOptions.from_options(val.get("collapse_guard"))
        self.keep_best = val.get("keep_best")
        self.keep_best_set = (validation_set_names(self.opt) or [None])[0]
        self.keep_best_direction = metric_direction(val["metrics"][self.keep_best]) if self.keep_best else None
        self.best = BestRecord.load(self._model_path(BEST_LABEL, ".json")) if self.keep_best else None
        self.last_good = BestRecord.load(self._model_path(LAST_GOOD_LABEL, ".json")) if self.collapse_bounds else None
        self._output_check: OutputCheck | None = None
        resuming = bool(self.opt["path"].get("resume_state"))
        at_start = val.get("val_at_start", self.opt["path"].get("pretrain_network_g") is not None)
        first = at_start and not resuming and self.opt.get("rank", 0) == 0  # only rank 0 validates (BasicSR)
        self._baseline_pending = set(validation_set_names(self.opt)) if first else set()
        self._starting_weights = self._weights_copy() if self._baseline_pending else None

    def _guarded_nets(self) -> list[tuple[torch.nn.Module, str]]:
        """The generator networks a checkpoint holds, with their parameter keys (as ``save``)."""
        nets = [(self.net_g, "params")]
        if hasattr(self, "net_g_ema"):
            nets.append((self.net_g_ema, "params_ema"))
        return nets

    def _weights_copy(self) -> list[dict[str, torch.Tensor]]:
        return [{k: v.detach().clone() for k, v in self.get_bare_model(net).state_dict().items()}
                for net, _ in self._guarded_nets()]

    @contextlib.contextmanager
    def _weights(self, weights: list[dict[str, torch.Tensor]]) -> Iterator[None]:
        """The generators hold ``weights`` inside, their current ones again after."""
        current = self._weights_copy()
        try:
            for (net, _), state in zip(self._guarded_nets(), weights, strict=True):
                self.get_bare_model(net).load_state_dict(state)
            yield
        finally:
            for (net, _), state in zip(self._guarded_nets(), current, strict=True):
                self.get_bare_model(net).load_state_dict(state)

    def _model_path(self, label: str, suffix: str) -> Path:
        return Path(self.opt["path"]["models"]) / f"net_g_{label}{suffix}"

    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True,
                     param_key: str | None = "params") -> None:
        """BasicSR's loader, after checking that a strict load fits (a clear error if it does not)."""
        if strict:
            label = "g" if any(net is getattr(self, n, None) for n in ("net_g", "net_g_ema")) else "d"
            problem = checkpoint_mismatch(self.get_bare_model(net), load_path, param_key,
                                          f"path.pretrain_network_{label}", self.opt.get(f"network_{label}"))
            if problem:
                raise ValueError(problem)
        super().load_network(net, load_path, strict, param_key)

    # ---- validation ---------------------------------------------------------------------------
    def validation(self, dataloader, current_iter: int, tb_logger, save_img: bool = False) -> None:
        """The baseline first (once per validation set, as iteration 0), then this validation; each
        followed by the collapse guard and keep-best."""
        name = dataloader.dataset.opt["name"]
        if not hasattr(self, "collapse_bounds") or self.opt.get("rank", 0) != 0:
            # a model built without training settings (testing), or a process that BasicSR does not
            # let validate (under DDP only rank 0 does; the guard's stop ends the others with it)
            self._starting_weights = None
            super().validation(dataloader, current_iter, tb_logger, save_img)
            return
        if name in self._baseline_pending:
            with self._weights(self._starting_weights):
                get_root_logger().info(f"{BASELINE_LOG}, on {name}")
                self._guarded_validation(dataloader, 0, tb_logger, save_img)
            self._baseline_pending.discard(name)
            if not self._baseline_pending:
                self._starting_weights = None
        self._guarded_validation(dataloader, current_iter, tb_logger, save_img)

    def test(self) -> None:
        """BasicSR's test; while the guard watches a validation pass, each output is measured too."""
        super().test()
        if self._output_check_active():
            self._output_check.add(self.lq, self.output)

    def _output_check_active(self) -> bool:
        return getattr(self, "_output_check", None) is not None

    def _guarded_validation(self, dataloader, current_iter: int, tb_logger, save_img: bool) -> None:
        name = dataloader.dataset.opt["name"]
        self._output_check = OutputCheck() if self.collapse_bounds else None
        try:
            super().validation(dataloader, current_iter, tb_logger, save_img)
            check = self._output_check
        finally:
            self._output_check = None
        if check is not None:
            problems = check.problems(self.collapse_bounds)
            if problems:
                self._on_collapse(name, current_iter, problems)  # raises, except for the starting model
            if not self.keep_best:
                self._save_guarded(LAST_GOOD_LABEL, current_iter, "collapse guard passed", None, name)
        if self.keep_best and name == self.keep_best_set:
            self._update_best(current_iter, name)

    def _on_collapse(self, name: str, current_iter: int, problems: list[str]) -> None:
        what = "; ".join(problems)
        if current_iter == 0:  # the reference itself: kept as the baseline, judged no further
            get_root_logger().warning(f"collapse guard: the STARTING model's output on {name} already {what}; "
                                      "its bounds (val.collapse_guard) may not suit these images")
            return
        good = self.best if self.keep_best else self.last_good
        where = (f"The last good checkpoint: {self.opt['path']['models']}/{good.describe()}" if good is not None
                 else "No validation passed before it, so there is no good checkpoint")
        message = (f"collapse guard stopped training at iteration {current_iter}: the generator's output on "
                   f"{name} {what}. {where}. Checkpoints saved after it hold the collapsed model; "
                   "fine-tune from the good one (path.pretrain_network_g) with a lower train.optim_g.lr.")
        get_root_logger().error(message)
        raise TrainingCollapse(message)

    def _update_best(self, current_iter: int, name: str) -> None:
        value = float(self.metric_results[self.keep_best])
        best = self.best.value if self.best is not None else None
        if not is_improvement(value, best, self.keep_best_direction):
            return
        baseline = value if current_iter == 0 else (self.best.baseline if self.best is not None else None)
        self.best = self._save_guarded(BEST_LABEL, current_iter, self.keep_best, value, name, baseline)
        get_root_logger().info(f"keep_best: new best {self.keep_best} {value:.4f} at iteration {current_iter} "
                               f"-> {self._model_path(BEST_LABEL, '.pth')}")

    def _save_guarded(self, label: str, current_iter: int, metric: str, value: float | None, name: str,
                      baseline: float | None = None) -> BestRecord:
        """``net_g_<label>.pth`` (as the periodic checkpoints) and its json record."""
        nets, keys = zip(*self._guarded_nets(), strict=True)
        self.save_network(list(nets), "net_g", label, param_key=list(keys))
        record = BestRecord(iteration=current_iter, metric=metric, value=float("nan") if value is None else value,
                            better=self.keep_best_direction or "", val_set=name,
                            checkpoint=f"net_g_{label}.pth", baseline=baseline)
        if self.opt.get("rank", 0) == 0:
            os.makedirs(self.opt["path"]["models"], exist_ok=True)
            record.save(self._model_path(label, ".json"))
        if label == LAST_GOOD_LABEL:
            self.last_good = record
        return record
