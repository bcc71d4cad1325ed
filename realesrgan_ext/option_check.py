"""``python train.py -opt FILE --check``: everything that can be known about a run before it starts.

``check_option_file`` runs the option validation (``option_validation``: unknown and contradictory
keys, losses the model cannot train) and then looks at the files the run will read:

* every ``dataroot*`` and ``meta_info*`` path of each dataset exists (an LMDB: a folder with
  ``data.mdb``; a meta-info file: a file);
* every ``path.pretrain_network_<x>`` (and ``path.resume_state``) loads: the network is built from
  ``network_<x>`` and the checkpoint's ``param_key_<x>`` entry is loaded into it, ``strict_load_<x>``
  as BasicSR does. A bundled model name (``realesrgan-x4plus``) counts as present;
* the VGG19 weights a perceptual loss names (``vgg_weights``, ``vgg_weights_path``) are here, or
  (a warning) will be downloaded at the start.

It returns a ``CheckReport``; ``run_from_argv`` is what ``train.py`` calls: ``--check`` prints the
report and exits 0 (no problem) or 2 (every problem listed) without training, ``--no-check``
skips the validation, and without either the option validation runs before training as always.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from realesrgan_ext.option_validation import (
    CHECKING_GUIDE,
    GUIDE,
    OptionFileError,
    check_options,
    merged_class_keys,
    read_option_file,
    validate_option_file,
)

PROBLEMS_EXIT = 2
PATH_KEY_PREFIXES = ("dataroot", "meta_info")  # BasicSR's names for the files a dataset reads
LMDB_SUFFIX = ".lmdb"


@dataclass
class CheckReport:
    """Problems (the run would fail or train something else) and warnings (keys nothing reads)."""

    source: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s), {len(self.warnings)} warning(s)"]
        lines += [f"  problem: {p}" for p in self.problems] + [f"  warning: {w}" for w in self.warnings]
        if self.problems or self.warnings:
            lines.append(f"(what is checked: {CHECKING_GUIDE}; BasicSR / Real-ESRGAN names: {GUIDE})")
        return "\n".join(lines)


def check_option_file(path: str | os.PathLike) -> CheckReport:
    """All checks of ``--check`` on one option file (see the module docstring)."""
    report = CheckReport(os.fspath(path))
    try:
        opt = read_option_file(path)
    except OptionFileError as error:
        report.problems.extend(error.problems)
        return report
    except OSError as error:
        report.problems.append(f"cannot read the option file: {error}")
        return report
    report.problems, report.warnings = check_options(opt)
    if isinstance(opt, Mapping):
        report.problems.extend(data_file_problems(opt))
        report.problems.extend(checkpoint_problems(opt))
        vgg_problems, vgg_warnings = vgg_weights_problems(opt)
        report.problems.extend(vgg_problems)
        report.warnings.extend(vgg_warnings)
    return report


def vgg_weights_problems(opt: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Loss sections naming VGG19 weights (``vgg_weights``) that cannot be found without a download:
    a problem when the download is off (``allow_download: false`` or ``$REALESRGAN_EXT_OFFLINE``), else a warning."""
    from realesrgan_ext.losses.vgg_weights import VGGWeightsNotFoundError, download_allowed, resolve_vgg19_weights

    train = opt.get("train") if isinstance(opt.get("train"), Mapping) else {}
    problems: list[str] = []
    warnings: list[str] = []
    for key, section in train.items():
        if not (str(key).endswith("_opt") and isinstance(section, Mapping) and _names_vgg_weights(opt, section)):
            continue
        try:
            resolve_vgg19_weights(section.get("vgg_weights_path"), allow_download=False,
                                  source=section.get("vgg_weights", "torchvision"))
        except VGGWeightsNotFoundError as error:
            downloads = download_allowed(section.get("allow_download", True))
            (warnings if downloads else problems).append(
                f"train.{key}: " + ("the VGG19 weights will be downloaded at the start: " if downloads else "")
                + str(error).replace("\n", " "))
        except (OSError, ValueError) as error:
            problems.append(f"train.{key}: {error}")
    return problems, warnings


def _names_vgg_weights(opt: Mapping[str, Any], section: Mapping[str, Any]) -> bool:
    """Whether the loss takes ``vgg_weights`` (its constructor, or the keys the model adds for it)."""
    import inspect

    from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

    if section.get("type") not in LOSS_REGISTRY:
        return False
    if "vgg_weights" in inspect.signature(LOSS_REGISTRY.get(section["type"])).parameters:
        return True
    model = MODEL_REGISTRY._obj_map.get(opt.get("model_type"))
    added = merged_class_keys(model, "loss_option_keys") if model is not None else None
    return "vgg_weights" in (added or {}).get(section["type"], ())


def _dataset_paths(opt: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    datasets = opt.get("datasets")
    for phase, dataset_opt in (datasets.items() if isinstance(datasets, Mapping) else ()):
        if not isinstance(dataset_opt, Mapping):
            continue
        for key, value in dataset_opt.items():
            if str(key).startswith(PATH_KEY_PREFIXES) and value is not None:
                for item in value if isinstance(value, list) else [value]:
                    yield f"datasets.{phase}.{key}", os.path.expanduser(str(item)), dataset_opt


def data_file_problems(opt: Mapping[str, Any]) -> list[str]:
    """Dataset folders, LMDBs and meta-info files that are missing."""
    problems = []
    for where, path, dataset_opt in _dataset_paths(opt):
        backend = (dataset_opt.get("io_backend") or {}).get("type") if isinstance(
            dataset_opt.get("io_backend"), Mapping) else None
        if where.rsplit(".", 1)[-1].startswith("meta_info"):
            if not os.path.isfile(path):
                problems.append(f"{where}: meta-info file {path} does not exist")
        elif not os.path.exists(path):
            problems.append(f"{where}: {path} does not exist")
        elif (path.endswith(LMDB_SUFFIX) or backend == "lmdb") and not os.path.isfile(os.path.join(path, "data.mdb")):
            problems.append(f"{where}: {path} is not an LMDB (no data.mdb in it; scripts/make_lmdb.py writes one)")
    return problems


def checkpoint_problems(opt: Mapping[str, Any]) -> list[str]:
    """``pretrain_network_<x>`` checkpoints that are missing or do not fit ``network_<x>``; ``resume_state``."""
    path_opt = opt.get("path") if isinstance(opt.get("path"), Mapping) else {}
    problems = []
    for key, value in path_opt.items():
        if not str(key).startswith("pretrain_network_") or value is None:
            continue
        label = str(key).removeprefix("pretrain_network_")
        message = _checkpoint_problem(str(value), opt.get(f"network_{label}"), path_opt.get(f"param_key_{label}",
                                      "params"), path_opt.get(f"strict_load_{label}", True))
        if message:
            problems.append(f"path.{key}: {message}")
    resume = path_opt.get("resume_state")
    if resume is not None:
        message = _loads(os.path.expanduser(str(resume)))
        if message:
            problems.append(f"path.resume_state: {message}")
    return problems


def _loads(path: str) -> str | None:
    import torch

    if not os.path.isfile(path):
        return f"{path} does not exist"
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file: say which and why
        return f"{path} does not load ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    return None


def _checkpoint_problem(path: str, network_opt: Any, param_key: str | None, strict: bool) -> str | None:
    """Why ``path`` cannot initialise the network ``network_opt`` describes, or None."""
    import torch
    from basicsr.archs import build_network

    from realesrgan_ext.inference.bundled_models import is_official_name

    path = os.path.expanduser(path)
    if not os.path.isfile(path) and is_official_name(path):
        return None  # a bundled model, converted on first use
    message = _loads(path)
    if message or not isinstance(network_opt, Mapping):
        return message
    state = torch.load(path, map_location="cpu", weights_only=True)
    if param_key is not None and isinstance(state, Mapping):
        key = param_key if param_key in state or "params" not in state else "params"  # as BasicSR's load_network
        if key not in state:
            return f"{path} has no {param_key!r} entry (it has {sorted(state)[:6]})"
        state = state[key]
    try:
        network = build_network(dict(network_opt))
        state = {k.removeprefix("module."): v for k, v in state.items()}
        network.load_state_dict(state, strict=bool(strict))
    except Exception as error:  # shape or key mismatch, or a network that cannot be built
        first = str(error).strip().splitlines()
        return f"{path} does not fit network ({type(error).__name__}: {' '.join(first[:3])[:400]})"
    return None


def run_from_argv(argv: list[str] | None = None) -> None:
    """``train.py``'s checks: consume ``--check`` / ``--no-check`` from ``sys.argv`` (BasicSR's
    parser does not know them) and act on them; exits when only checking or when the file is bad."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-opt", required=True)
    flags = parser.add_mutually_exclusive_group()
    flags.add_argument("--check", action="store_true")
    flags.add_argument("--no-check", dest="no_check", action="store_true")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if argv is None:
        sys.argv = [sys.argv[0], "-opt", args.opt, *rest]
    if args.no_check:
        print(f"--no-check: {args.opt} is not validated", file=sys.stderr)
        return
    if args.check:
        report = check_option_file(args.opt)
        print(report.render())
        raise SystemExit(PROBLEMS_EXIT if report.problems else 0)
    try:
        validate_option_file(args.opt)
    except (OptionFileError, OSError) as error:
        raise SystemExit(f"error: {error}") from None

