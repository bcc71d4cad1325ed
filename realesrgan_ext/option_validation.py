"""Option-file validation before training: an unknown or contradictory key is reported.

BasicSR reads option files with ``dict.get`` and ignores every key it does not read, so a
misspelt ``perceptul_opt`` or a ``gan_opt`` without ``network_d`` silently trains another
experiment. ``validate_option_file`` checks a YAML file against what the code reads and
raises ``OptionFileError`` listing every problem with the file, the key's dotted path and,
when one is close, the nearest valid name.

Where the valid keys come from: the code that reads them, never a list kept here.

* Sections read key by key (the top level, ``train``, ``path``, ``val``, ``logger``, ``datasets.<phase>``,
  ``logger.wandb``, ...): the keys read in the source of BasicSR's training and test pipelines
  and of the ``model_type`` class and the dataset class, with their bases (``option_reads``,
  an ``ast`` walk), plus an ``option_keys`` class attribute for keys read in ways the walk
  cannot see (``{section: keys}`` on a model, ``""`` = top level; a set on a dataset).
  An unknown key here is an error for this plugin's classes and a warning for others
  (BasicSR's, a third party's): their code just ignores it.
* Sections passed whole to a constructor or function: ``network_*`` (the architecture),
  ``train.*_opt`` (the loss), ``train.optim_*`` (the ``torch.optim`` class), ``train.scheduler``
  (BasicSR's scheduler), ``val.metrics.<name>`` (the metric function, all of its parameters
  but those the validation loop fills itself, ``img`` / ``img2``). An unknown key there would
  crash the call, so it is an error whoever owns the class (a metric taking ``**kwargs`` swallows
  it: a warning for others' metrics). A model that adapts a loss declares the keys it adds in
  ``loss_option_keys = {loss type: keys}`` (PerceptualLoss's VGG19 weights).
* A model class may declare ``option_conflicts(opt) -> list[str]`` (a classmethod) for
  contradictions between keys.

``validate_options`` calls ``realesrgan_ext.register()`` (idempotent) so the registries are filled.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import io
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import yaml

from realesrgan_ext.option_reads import ANY, Path, Reads, class_reads, keys_at, merge, metric_data_keys, pipeline_reads

# difflib ratio for a hint: 'noise_range' -> 'is_train' (0.63) and 'vgg_type' -> 'type' (0.67) are not offered
SUGGESTION_CUTOFF = 0.75
OWN_PACKAGE = "realesrgan_ext"
GUIDE = "docs/coming-from-basicsr.md"
CHECKING_GUIDE = "docs/checking-options.md"


class OptionFileError(ValueError):
    """An option file with unknown or contradictory keys; ``problems`` lists each one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in the option file:\n{lines}\n"
                         f"(keys and checks: {CHECKING_GUIDE}; BasicSR / Real-ESRGAN names: {GUIDE})")


def nearest(key: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or ``''``."""
    match = difflib.get_close_matches(str(key), sorted(v for v in valid if v != ANY), n=1, cutoff=SUGGESTION_CUTOFF)
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


def owned(obj: Any) -> bool:
    """Whether ``obj`` (a class or function) is one of this plugin's parts."""
    return str(getattr(obj, "__module__", "")).split(".")[0] == OWN_PACKAGE


def declared_reads(cls: type | None) -> Reads:
    """A class's ``option_keys`` as ``path -> keys`` (a model: ``{section: keys}``; a dataset: a set)."""
    declared = merged_class_keys(cls) if cls is not None else None
    if isinstance(declared, dict):
        return {tuple(filter(None, str(section).split("."))): frozenset(keys) for section, keys in declared.items()}
    return {(): frozenset(declared)} if declared else {}


def _is_loss_section(key: str, value: Any) -> bool:
    return str(key).endswith("_opt") and isinstance(value, Mapping)


class _Checker:
    """Collects the problems (errors) and warnings of one option dict."""

    def __init__(self, opt: Mapping[str, Any]) -> None:
        from basicsr.utils.registry import MODEL_REGISTRY

        self.opt = opt
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.model_class = self._registered(MODEL_REGISTRY, opt.get("model_type"), "model_type")
        model_reads = merge(class_reads(self.model_class), declared_reads(self.model_class)) if self.model_class else {}
        self.reads = merge(pipeline_reads(), model_reads)
        self.model_strict = self.model_class is None or owned(self.model_class)
        self.networks = [str(k).removeprefix("network_") for k in opt if str(k).startswith("network_")]

    def report(self, where: str, message: str, strict: bool) -> None:
        (self.problems if strict else self.warnings).append(f"{where}: {message}")

    def unknown_keys(self, where: str, mapping: Any, valid: Collection[str] | None, strict: bool = True,
                     owner: Any = None) -> None:
        if valid is None or ANY in valid:
            return
        if not isinstance(mapping, Mapping):
            if mapping is not None:
                self.problems.append(f"{where}: must be a mapping of keys, got {type(mapping).__name__}")
            return
        for key in mapping:
            if key not in valid:
                path = f"{where}.{key}" if where else str(key)
                ignored = "" if strict else f"; {getattr(owner, '__name__', 'BasicSR')} does not read it (ignored)"
                self.report(path, f"unknown key{nearest(key, valid)}{ignored}", strict)

    def missing_arguments(self, where: str, mapping: Mapping[str, Any], target: Callable, given: Collection[str] = (),
                          skip: int = 0) -> None:
        """Required parameters of ``target`` that neither the section nor the caller (``given``) supplies."""
        params = list(inspect.signature(target).parameters.values())[skip:]
        for param in params:
            if (param.default is param.empty and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
                    and param.name not in mapping and param.name not in given):
                self.problems.append(f"{where}: missing {param.name!r} "
                                     f"({getattr(target, '__name__', target)} requires it)")

    def _registered(self, registry: Any, name: Any, where: str) -> Any:
        if name is None:
            self.problems.append(f"{where}: missing")
            return None
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # basicsr prints when it falls back to NAME_basicsr
                return registry.get(name)
        except KeyError:
            self.problems.append(f"{where}: {name!r} is not registered in {registry._name}"
                                 f"{nearest(name, registry.keys())}")
            return None

    def check(self) -> _Checker:
        top = keys_at(self.reads, ()) | {f"network_{n}" for n in self.networks}
        self.unknown_keys("", self.opt, top, self.model_strict, self.model_class)
        for key, value in self.opt.items():
            if str(key).startswith("network_") or key == "datasets" or not isinstance(value, Mapping):
                continue
            self._check_section((str(key),), value)
        self._check_networks()
        self._check_datasets()
        self._check_train()
        self._check_metrics()
        conflicts = getattr(self.model_class, "option_conflicts", None)
        if conflicts is not None:
            self.problems.extend(conflicts(self.opt))
        return self

    def _section_keys(self, path: Path) -> frozenset[str]:
        keys = keys_at(self.reads, path)
        if path == ("path",):
            for net in self.networks:  # BasicSR reads these per network (f'pretrain_network_{net}')
                keys |= {f"pretrain_network_{net}", f"param_key_{net}", f"strict_load_{net}"}
        return keys

    def _check_section(self, path: Path, mapping: Mapping[str, Any]) -> None:
        """A section read key by key (``train``, ``logger.wandb``, ...), then its sub-sections."""
        keys = self._section_keys(path)
        if not keys:
            return  # read as a whole by code the walk cannot see (e.g. train.speed): checked there
        self.unknown_keys(".".join(path), mapping, keys, self.model_strict, self.model_class)
        for key, value in mapping.items():
            passed_whole = path == ("train",) and (_is_loss_section(key, value) or str(key).startswith("optim_")
                                                   or key == "scheduler")
            if isinstance(value, Mapping) and key in keys and not passed_whole and (*path, key) != ("val", "metrics"):
                self._check_section((*path, str(key)), value)

    def _check_networks(self) -> None:
        from basicsr.utils.registry import ARCH_REGISTRY

        for section, net_opt in self.opt.items():
            if not str(section).startswith("network_") or not isinstance(net_opt, Mapping):
                continue
            cls = self._registered(ARCH_REGISTRY, net_opt.get("type"), f"{section}.type")
            if cls is not None:
                keys = signature_keys(cls)
                self.unknown_keys(section, net_opt, None if keys is None else keys | {"type"})
                self.missing_arguments(section, net_opt, cls)

    def _check_datasets(self) -> None:
        from basicsr.utils.registry import DATASET_REGISTRY

        datasets = self.opt.get("datasets")
        if not isinstance(datasets, Mapping):
            self.problems.append("datasets: missing (a mapping with 'train' and optionally 'val', 'val_2', ...)")
            return
        for phase, dataset_opt in datasets.items():
            where = f"datasets.{phase}"
            if str(phase).split("_")[0] not in ("train", "val", "test"):
                self.problems.append(f"{where}: unknown phase{nearest(phase, ('train', 'val'))}: "
                                     "use train, val or val_<n>")
            if not isinstance(dataset_opt, Mapping):
                self.problems.append(f"{where}: must be a mapping")
                continue
            cls = self._registered(DATASET_REGISTRY, dataset_opt.get("type"), f"{where}.type")
            if cls is None:
                continue
            own = merge(class_reads(cls), declared_reads(cls))
            keys = (keys_at(own, ()) | keys_at(self.reads, ("datasets", str(phase)))
                    | keys_at(self.reads, ("datasets", str(phase).split("_")[0])))
            self.unknown_keys(where, dataset_opt, keys, owned(cls), cls)

    def _check_train(self) -> None:
        from basicsr.models import lr_scheduler
        from basicsr.utils.registry import LOSS_REGISTRY

        train = self.opt.get("train")
        if not isinstance(train, Mapping):
            return
        known = self._section_keys(("train",))
        for key, value in train.items():
            if not isinstance(value, Mapping) or (key not in known and ANY not in known):
                continue
            where = f"train.{key}"
            if _is_loss_section(key, value):
                cls = self._registered(LOSS_REGISTRY, value.get("type"), f"{where}.type")
                keys = signature_keys(cls) if cls is not None else None
                if cls is not None:
                    self.missing_arguments(where, value, cls)
                    adapted = merged_class_keys(self.model_class, "loss_option_keys") if self.model_class else None
                    keys = None if keys is None else keys | (adapted or {}).get(value.get("type"), frozenset())
            elif str(key).startswith("optim_"):
                cls = self._optimizer_class(value.get("type"), where)
                keys = signature_keys(cls, skip=1) if cls is not None else None  # params
            elif key == "scheduler":
                name = {"MultiStepLR": "MultiStepRestartLR"}.get(value.get("type"), value.get("type"))
                cls = getattr(lr_scheduler, str(name), None)
                if cls is None:
                    self.problems.append(f"{where}.type: {value.get('type')!r} is not a BasicSR scheduler"
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
        self.problems.append(f"{where}.type: {name!r} is not a torch.optim optimizer{nearest(name, names)}")
        return None

    def _check_metrics(self) -> None:
        from basicsr.utils.registry import METRIC_REGISTRY

        val = self.opt.get("val")
        metrics = val.get("metrics") if isinstance(val, Mapping) else None
        if not isinstance(metrics, Mapping):
            return
        filled = metric_data_keys(self.model_class) if self.model_class else frozenset()
        for name, metric_opt in metrics.items():
            if not isinstance(metric_opt, Mapping):
                continue
            func = self._registered(METRIC_REGISTRY, metric_opt.get("type"), f"val.metrics.{name}.type")
            if func is None:
                continue
            if filled:  # a model that fills no metric_data calls its metrics its own way
                self.missing_arguments(f"val.metrics.{name}", metric_opt, func, filled)
            keys = signature_keys(func, var_kwargs_accept_all=False) - filled
            swallowed = signature_keys(func) is None  # **kwargs: an unknown key is ignored, not a crash
            self.unknown_keys(f"val.metrics.{name}", metric_opt,
                              keys | keys_at(self.reads, ("val", "metrics", str(name))),
                              owned(func) or not swallowed, func)


def check_options(opt: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of an option dict (see the module docstring)."""
    if not isinstance(opt, Mapping):
        return [f"the file holds a {type(opt).__name__}, not a mapping of options"], []
    import realesrgan_ext

    realesrgan_ext.register()  # our classes must be in BasicSR's registries to be looked up
    checker = _Checker(opt).check()
    return checker.problems, checker.warnings


def validate_options(opt: Mapping[str, Any], source: str = "option file") -> list[str]:
    """Raise ``OptionFileError`` naming ``source`` when ``opt`` has problems; returns the warnings,
    each as ``source: key.path: message``."""
    problems, warnings = check_options(opt)
    if problems:
        raise OptionFileError(source, problems)
    return [f"{source}: {w}" for w in warnings]


def read_option_file(path: str | os.PathLike) -> Any:
    """The YAML content of an option file (``OptionFileError`` when it is not YAML)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        try:
            return yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise OptionFileError(path, [f"not valid YAML: {e}"]) from e


def validate_option_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a BasicSR YAML option file and validate it; returns the options (warnings go to stderr)."""
    import sys

    opt = read_option_file(path)
    for warning in validate_options(opt, os.fspath(path)):
        print(f"warning: {warning}", file=sys.stderr)
    return opt
