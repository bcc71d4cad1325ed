"""Option-file validation at training start: an unknown or contradictory key is an error.

BasicSR reads option files with ``dict.get`` and ignores every key it does not read, so a
misspelt ``perceptul_opt`` or a ``gan_opt`` without ``network_d`` silently trains another
experiment. ``validate_option_file`` checks a YAML file against what the code reads and
raises ``OptionFileError`` listing every problem with the key's dotted path, the file and
the nearest valid name (difflib). BasicSR's own keys stay valid.

Where the valid keys come from (each part declares its own, so adding a part adds its keys):

* top level and each plain section (``train``, ``path``, ``val``, ``logger``, ``dist_params``, a
  new section such as ``degradation``): ``BASICSR_KEYS`` plus the ``option_keys`` class attribute
  of the ``model_type`` class and of every base class, merged along the MRO. A model declares
  ``option_keys = {"": {"my_top_level_key"}, "train": {"my_train_key"}, "my_section": {...}}``
  (``""`` is the top level) listing only its own additions; a subclass lists only what it adds.
  A section the model declares is checked key by key; a model class may also declare
  ``option_conflicts(opt) -> list[str]`` (a classmethod) for contradictions between keys.
* ``network_*`` sections: the registered class's constructor parameters (no check when it
  takes ``**kwargs``); an unknown ``type`` is an error too.
* ``train.*_opt`` losses: the loss class's constructor parameters; ``optim_*``: the
  ``torch.optim`` class's; ``scheduler``: BasicSR's scheduler class's.
* ``datasets.<phase>``: BasicSR's dataloader keys plus the dataset class's ``option_keys``
  class attribute (a set of key names, merged along the MRO). A dataset class without
  ``option_keys`` (BasicSR's own) has only its ``type`` checked.
* ``val.metrics.<name>``: the metric function's named parameters, plus ``better``.

``validate_options`` calls ``realesrgan_ext.register()`` (idempotent) so the registries are filled.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import yaml

# Keys BasicSR 1.4.2 itself reads (or writes while parsing, e.g. ``rank``, ``path.models``).
BASICSR_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({
        "name", "model_type", "scale", "num_gpu", "manual_seed", "datasets", "network_g", "network_d",
        "path", "train", "val", "logger", "dist_params", "find_unused_parameters",
        "dist", "rank", "world_size", "auto_resume", "is_train", "root_path"}),
    "path": frozenset({
        "pretrain_network_g", "param_key_g", "strict_load_g", "pretrain_network_d", "param_key_d",
        "strict_load_d", "resume_state", "ignore_resume_networks", "experiments_root", "models", "training_states",
        "log", "visualization", "results_root"}),
    "train": frozenset({
        "ema_decay", "optim_g", "optim_d", "scheduler", "total_iter", "warmup_iter", "pixel_opt",
        "perceptual_opt", "gan_opt", "net_d_iters", "net_d_init_iters"}),
    "val": frozenset({"val_freq", "save_img", "metrics", "suffix", "pbar"}),
    "logger": frozenset({"print_freq", "save_checkpoint_freq", "use_tb_logger", "wandb"}),
    "logger.wandb": frozenset({"project", "resume_id"}),
    "dist_params": frozenset({"backend", "port"}),
}
# Dataset keys read by BasicSR's dataloader / option parser, valid for every dataset class.
BASICSR_DATASET_KEYS = frozenset({
    "name", "type", "phase", "scale", "num_worker_per_gpu", "batch_size_per_gpu", "dataset_enlarge_ratio",
    "prefetch_mode", "pin_memory", "persistent_workers", "num_prefetch_queue", "use_shuffle"})
METRIC_EXTRA_KEYS = frozenset({"type", "better"})  # ``better``: BasicSR's best-metric direction


class OptionFileError(ValueError):
    """An option file with unknown or contradictory keys; ``problems`` lists each one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in the option file:\n{lines}")


def nearest(key: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or ``''``."""
    match = difflib.get_close_matches(str(key), sorted(valid), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def merged_class_keys(cls: type, attribute: str = "option_keys") -> Any:
    """Union of ``attribute`` over ``cls`` and its bases (each class lists only its additions).

    Returns a set for set-valued attributes, a ``{section: set}`` dict for dict-valued ones.
    """
    merged: Any = None
    for klass in reversed(cls.__mro__):
        own = vars(klass).get(attribute)
        if own is None:
            continue
        if isinstance(own, Mapping):
            merged = merged if isinstance(merged, dict) else {}
            for section, keys in own.items():
                merged[section] = merged.get(section, frozenset()) | frozenset(keys)
        else:
            merged = (merged if isinstance(merged, frozenset) else frozenset()) | frozenset(own)
    return merged


def signature_keys(target: Callable, skip: int = 0, var_kwargs_accept_all: bool = True) -> frozenset[str] | None:
    """Parameter names of ``target`` (a class: its ``__init__`` without ``self``) after the first ``skip``.

    ``None`` (anything goes) when it takes ``**kwargs`` and ``var_kwargs_accept_all``.
    """
    params = list(inspect.signature(target).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params) and var_kwargs_accept_all:
        return None
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return frozenset(p.name for p in named[skip:])


class _Checker:
    """Collects the problems of one option dict."""

    def __init__(self, opt: Mapping[str, Any]) -> None:
        from basicsr.utils.registry import MODEL_REGISTRY

        self.opt = opt
        self.problems: list[str] = []
        self.model_class = self._registered(MODEL_REGISTRY, opt.get("model_type"), "model_type")
        self.sections = {k: set(v) for k, v in BASICSR_KEYS.items()}
        declared = merged_class_keys(self.model_class) if self.model_class else None
        for section, keys in (declared or {}).items():
            self.sections.setdefault(section, set()).update(keys)
        for net in (str(k).removeprefix("network_") for k in opt if str(k).startswith("network_")):
            self.sections["path"].update({f"pretrain_network_{net}", f"param_key_{net}", f"strict_load_{net}"})

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def unknown_keys(self, where: str, mapping: Any, valid: Collection[str] | None) -> None:
        if valid is None:
            return
        if not isinstance(mapping, Mapping):
            if mapping is not None:
                self.problem(where, f"must be a mapping of keys, got {type(mapping).__name__}")
            return
        for key in mapping:
            if key not in valid:
                path = f"{where}.{key}" if where else str(key)
                self.problem(path, f"unknown key{nearest(key, valid)}")

    def _registered(self, registry: Any, name: Any, where: str) -> Any:
        if name is None:
            self.problem(where, "missing")
            return None
        try:
            return registry.get(name)
        except KeyError:
            self.problem(where, f"{name!r} is not registered in {registry._name}{nearest(name, registry.keys())}")
            return None

    def check(self) -> list[str]:
        self.unknown_keys("", self.opt, self.sections[""] | {k for k in self.opt if str(k).startswith("network_")})
        for section, valid in self.sections.items():
            if section and "." not in section and section in self.opt:
                self.unknown_keys(section, self.opt[section], valid)
        wandb = (self.opt.get("logger") or {}).get("wandb") if isinstance(self.opt.get("logger"), Mapping) else None
        self.unknown_keys("logger.wandb", wandb, self.sections["logger.wandb"])
        self._check_networks()
        self._check_datasets()
        self._check_train()
        self._check_metrics()
        conflicts = getattr(self.model_class, "option_conflicts", None)
        if conflicts is not None:
            self.problems.extend(conflicts(self.opt))
        return self.problems

    def _check_networks(self) -> None:
        from basicsr.utils.registry import ARCH_REGISTRY

        for section, net_opt in self.opt.items():
            if not str(section).startswith("network_") or not isinstance(net_opt, Mapping):
                continue
            cls = self._registered(ARCH_REGISTRY, net_opt.get("type"), f"{section}.type")
            if cls is not None:
                keys = signature_keys(cls)
                self.unknown_keys(section, net_opt, None if keys is None else keys | {"type"})

    def _check_datasets(self) -> None:
        from basicsr.utils.registry import DATASET_REGISTRY

        datasets = self.opt.get("datasets")
        if not isinstance(datasets, Mapping):
            self.problem("datasets", "missing (a mapping with 'train' and optionally 'val', 'val_2', ...)")
            return
        for phase, dataset_opt in datasets.items():
            where = f"datasets.{phase}"
            if str(phase).split("_")[0] not in ("train", "val", "test"):
                self.problem(where, f"unknown phase{nearest(phase, ('train', 'val'))}: use train, val or val_<n>")
            if not isinstance(dataset_opt, Mapping):
                self.problem(where, "must be a mapping")
                continue
            cls = self._registered(DATASET_REGISTRY, dataset_opt.get("type"), f"{where}.type")
            own = merged_class_keys(cls) if cls is not None else None
            if own is not None:
                self.unknown_keys(where, dataset_opt, BASICSR_DATASET_KEYS | own)

    def _check_train(self) -> None:
        from basicsr.models import lr_scheduler
        from basicsr.utils.registry import LOSS_REGISTRY

        train = self.opt.get("train")
        if not isinstance(train, Mapping):
            return
        for key, value in train.items():
            if not isinstance(value, Mapping) or key not in self.sections["train"]:
                continue
            where = f"train.{key}"
            if str(key).endswith("_opt"):
                cls = self._registered(LOSS_REGISTRY, value.get("type"), f"{where}.type")
                keys = signature_keys(cls) if cls is not None else None
            elif str(key).startswith("optim_"):
                cls = self._optimizer_class(value.get("type"), where)
                keys = signature_keys(cls, skip=1) if cls is not None else None  # params
            elif key == "scheduler":
                name = {"MultiStepLR": "MultiStepRestartLR"}.get(value.get("type"), value.get("type"))
                cls = getattr(lr_scheduler, str(name), None)
                if cls is None:
                    self.problem(f"{where}.type", f"{value.get('type')!r} is not a BasicSR scheduler"
                                 f"{nearest(value.get('type'), ('MultiStepLR', 'CosineAnnealingRestartLR'))}")
                keys = signature_keys(cls, skip=1) if cls is not None else None  # optimizer
            else:
                continue
            self.unknown_keys(where, value, None if keys is None else keys | {"type"})

    def _optimizer_class(self, name: Any, where: str) -> type | None:
        import torch

        cls = getattr(torch.optim, str(name), None)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
            return cls
        names = [n for n, c in vars(torch.optim).items()
                 if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)]
        self.problem(f"{where}.type", f"{name!r} is not a torch.optim optimizer{nearest(name, names)}")
        return None

    def _check_metrics(self) -> None:
        from basicsr.utils.registry import METRIC_REGISTRY

        val = self.opt.get("val")
        metrics = val.get("metrics") if isinstance(val, Mapping) else None
        if not isinstance(metrics, Mapping):
            return
        for name, metric_opt in metrics.items():
            if not isinstance(metric_opt, Mapping):
                continue
            func = self._registered(METRIC_REGISTRY, metric_opt.get("type"), f"val.metrics.{name}.type")
            if func is not None:  # their **kwargs only swallow what calculate_metric passes
                keys = signature_keys(func, skip=2, var_kwargs_accept_all=False)  # img, img2
                self.unknown_keys(f"val.metrics.{name}", metric_opt, keys | METRIC_EXTRA_KEYS)


def validate_options(opt: Mapping[str, Any], source: str = "option file") -> None:
    """Raise ``OptionFileError`` naming ``source`` when ``opt`` has unknown or contradictory keys."""
    if not isinstance(opt, Mapping):
        raise OptionFileError(source, [f"the file holds a {type(opt).__name__}, not a mapping of options"])
    import realesrgan_ext

    realesrgan_ext.register()  # our classes must be in BasicSR's registries to be looked up
    problems = _Checker(opt).check()
    if problems:
        raise OptionFileError(source, problems)


def validate_option_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a BasicSR YAML option file and validate it; returns the options."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        try:
            opt = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise OptionFileError(path, [f"not valid YAML: {e}"]) from e
    validate_options(opt, path)
    return opt


def validate_option_file_from_argv(argv: list[str] | None = None) -> None:
    """Validate the ``-opt`` file of a ``train.py`` command line; exit with the problems if any."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-opt", required=True)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        validate_option_file(args.opt)
    except (OptionFileError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
