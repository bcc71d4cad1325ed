"""Every fix that basicsr 1.4.2 needs to run on current torch/torchvision and on CPU.

`apply()` runs once, from ``realesrgan_ext.register()``, before anything of basicsr is imported.
Fix 1 (the torchvision alias) is also installed by ``import realesrgan_ext`` itself, as a lazy
import finder that costs nothing until basicsr asks for the module: a process that never calls
``register()`` (a DataLoader worker started with ``spawn``, which re-imports our dataset module
and with it basicsr) must still be able to import basicsr. The same finder runs
``realesrgan_ext.register`` right after the first ``import basicsr`` (``register_after_basicsr_import``).
This module imports only the standard library at load time, so the package import stays light.
Each fix names the basicsr line it replaces and why, and is applied only where that
line is still present, so a fixed basicsr release makes the fix a no-op.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_applied = False


def _source_contains(func: Callable, snippet: str) -> bool:
    """True when ``func``'s source still has ``snippet`` (the buggy line a fix replaces)."""
    try:
        return snippet in inspect.getsource(func)
    except (OSError, TypeError):
        return False


class _BasicsrImportFinder(importlib.abc.MetaPathFinder):
    """The package's one import finder, first on ``sys.meta_path``; it acts on two names only.

    * ``torchvision.transforms.functional_tensor`` (fix 1): served from ``_functional_tensor``
      when no other finder has the module (a torchvision that still has it wins).
    * ``basicsr``: found by the other finders as usual, then, once the package has run, the
      ``after_basicsr`` hook runs (``realesrgan_ext.register``): a script that imports
      ``realesrgan_ext`` and then anything of basicsr finds our parts in basicsr's registries.
    * ``realesrgan``: ``before_realesrgan`` runs first (``registry.refuse_realesrgan_import``: the
      package registers classes under our names, so it is refused with a clear message instead of
      BasicSR's registry assertion).
    """

    ALIAS = "torchvision.transforms.functional_tensor"
    HOOKED = "basicsr"

    def __init__(self) -> None:
        self.after_basicsr: Callable[[], None] | None = None
        self.before_realesrgan: Callable[[], None] | None = None

    def _others(self, fullname: str, path: Any, target: Any) -> Any:
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    return spec
        return None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname == self.ALIAS:
            if self._others(fullname, path, target) is not None:
                return None
            if importlib.util.find_spec("torchvision.transforms._functional_tensor") is None:
                return None
            return importlib.util.spec_from_loader(fullname, _FunctionalTensorAlias())
        hooks = {"realesrgan": (self.before_realesrgan, None), self.HOOKED: (None, self.after_basicsr)}.get(fullname)
        if hooks is None or hooks == (None, None):
            return None
        spec = self._others(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _HookedLoader(spec.loader, *hooks)
        return spec


class _HookedLoader(importlib.abc.Loader):
    """Wraps a module's loader: ``before`` runs when the module is about to execute (it may raise
    ImportError; finding the module stays possible), ``after`` once it has executed."""

    def __init__(self, loader: Any, before: Callable[[], None] | None, after: Callable[[], None] | None) -> None:
        self.loader, self.before, self.after = loader, before, after

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        if self.before is not None:
            self.before()
        self.loader.exec_module(module)
        if self.after is not None:
            self.after()

    def __getattr__(self, name: str) -> Any:  # get_code, is_package, get_resource_reader, ...
        return getattr(self.loader, name)


class _FunctionalTensorAlias(importlib.abc.Loader):
    """Serves ``torchvision.transforms.functional_tensor`` from ``_functional_tensor``."""

    def create_module(self, spec: Any) -> None:
        return None  # the default module object

    def exec_module(self, module: Any) -> None:
        private = importlib.import_module("torchvision.transforms._functional_tensor")
        module.__dict__.update({k: v for k, v in vars(private).items() if not k.startswith("__")})


def _finder() -> _BasicsrImportFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, _BasicsrImportFinder)), None)


def install_functional_tensor_alias() -> bool:
    """Fix 1: ``basicsr/data/degradations.py:8`` imports ``torchvision.transforms.functional_tensor``.

    torchvision 0.17 renamed that module to ``_functional_tensor``; without an alias
    ``import basicsr`` fails. Installs the import finder once; True when it was installed now.
    """
    if _finder() is not None:
        return False
    sys.meta_path.insert(0, _BasicsrImportFinder())
    return True


def register_after_basicsr_import(hook: Callable[[], None]) -> None:
    """Run ``hook`` right after the first ``import basicsr`` of this process (at once if basicsr is
    already imported). ``import realesrgan_ext`` sets it to ``register``, so registering costs
    nothing until basicsr itself is imported."""
    install_functional_tensor_alias()
    if "basicsr" in sys.modules:
        hook()
    else:
        _finder().after_basicsr = hook


def check_before_realesrgan_import(hook: Callable[[], None]) -> None:
    """Run ``hook`` before the ``realesrgan`` package is imported (it may raise ImportError)."""
    install_functional_tensor_alias()
    _finder().before_realesrgan = hook


def load_resume_state(opt: dict[str, Any]) -> dict[str, Any] | None:
    """Fix 2, replaces ``basicsr/train.py`` ``load_resume_state``.

    basicsr calls ``torch.cuda.current_device()`` (crashes without a GPU), looks for
    ``experiments/NAME/training_states`` relative to the working directory instead of the
    experiment root, and takes the newest ``.state`` even when it or its networks are truncated.
    Here ``--auto_resume`` takes the newest checkpoint whose state and ``net_*_<iter>.pth`` all
    load, naming each newer one it skips and why. States are loaded to CPU
    (``Optimizer.load_state_dict`` moves them to the parameters' device). The state's data
    position and random state are handed to the training sampler (fix 4).
    """
    import torch
    from basicsr.utils import check_resume

    from realesrgan_ext.utils.checkpoint import newest_resumable_state
    from realesrgan_ext.utils.resume_position import expect_resume

    if opt["auto_resume"]:
        path, skipped = newest_resumable_state(opt["path"]["training_states"], opt["path"]["models"],
                                               _resumed_network_labels(opt))
        for message in skipped:
            print(f"auto_resume: {message}", file=sys.stderr)
        if path is not None:
            opt["path"]["resume_state"] = str(path)
    else:
        path = opt["path"].get("resume_state")
    if path is None:
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RuntimeError(f"resume_state {path} cannot be loaded: {error}") from error
    check_resume(opt, state["iter"])
    expect_resume(state, opt["datasets"]["train"]["batch_size_per_gpu"], restore_rng=opt.get("world_size", 1) == 1)
    return state


def _resumed_network_labels(opt: dict[str, Any]) -> list[str]:
    """``g``, ``d``: the networks whose ``net_<label>_<iter>.pth`` a resume loads (as ``check_resume``)."""
    ignored = opt["path"].get("ignore_resume_networks") or []
    return [key.removeprefix("network_") for key in opt if key.startswith("network_") and key not in ignored]


def enlarged_sampler_iter(original_iter: Callable) -> Callable:
    """Fix 4, wraps ``basicsr/data/data_sampler.py`` ``EnlargedSampler.__iter__``.

    ``basicsr/train.py`` resumes with ``train_sampler.set_epoch(epoch); prefetcher.reset()``,
    i.e. from the first batch of the saved epoch: the batches trained on since the epoch began
    are trained on twice and the augmentation random stream restarts. The wrapped sampler
    skips them and restores the saved random state (``realesrgan_ext.utils.resume_position``).
    """
    from realesrgan_ext.utils.resume_position import continue_from_saved_position

    def __iter__(self):
        return continue_from_saved_position(self.epoch, self.num_samples, original_iter(self))

    __iter__.__wrapped__ = original_iter
    return __iter__


def init_dist_pytorch(backend: str = "nccl", **kwargs: Any) -> None:
    """Fix 3a, replaces ``basicsr/utils/dist_util.py`` ``_init_dist_pytorch``.

    basicsr hard-codes nccl and ``torch.cuda.set_device(rank % device_count)``: a
    ZeroDivisionError without a GPU, and the wrong device on every node after the first.
    Here: nccl and ``LOCAL_RANK``'s device with CUDA, gloo on CPU.
    """
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, **kwargs)


def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
    """Fix 3b, replaces ``basicsr/models/base_model.py`` ``BaseModel.model_to_device``.

    basicsr passes ``device_ids=[torch.cuda.current_device()]`` to DDP, which fails on CPU
    (gloo) where ``device_ids`` must be None.
    """
    import torch
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    net = net.to(self.device)
    if self.opt["dist"]:
        device_ids = [torch.cuda.current_device()] if self.device.type == "cuda" else None
        find_unused = self.opt.get("find_unused_parameters", False)
        net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
    elif self.opt["num_gpu"] > 1:
        net = DataParallel(net)
    return net


def normalize_local_rank_argv(argv: list[str]) -> list[str]:
    """Fix 3c: torch>=2 launchers pass ``--local-rank``; basicsr's parser knows ``--local_rank``."""
    return [a.replace("--local-rank", "--local_rank", 1) if a.startswith("--local-rank") else a for a in argv]


def _wrap_parse_options(parse_options: Callable) -> Callable:
    def parse_options_accepting_local_rank(*args: Any, **kwargs: Any):
        sys.argv = normalize_local_rank_argv(sys.argv)
        return parse_options(*args, **kwargs)

    parse_options_accepting_local_rank.__wrapped__ = parse_options
    return parse_options_accepting_local_rank


# Top-level keys of the option layout before ``val:`` existed (BasicSR's own options/test/RCAN/test_RCAN.yml)
LEGACY_VAL_KEYS = {"save_img": False, "suffix": None}


def val_section_from_legacy(opt: dict[str, Any]) -> dict[str, Any]:
    """Fix 5: ``basicsr.test.test_pipeline`` reads ``opt['val']['save_img']`` and SRModel
    ``opt['val']['suffix']``; a test file in the older layout (top-level ``save_img`` / ``suffix``,
    no ``val``) crashed with ``KeyError: 'val'``. Those keys move into ``val``, with their defaults."""
    if "val" not in opt:
        opt["val"] = {key: opt.pop(key, default) for key, default in LEGACY_VAL_KEYS.items()}
    return opt


def _wrap_test_parse_options(parse_options: Callable) -> Callable:
    def parse_options_with_val(*args: Any, **kwargs: Any):
        opt, parsed = parse_options(*args, **kwargs)
        return val_section_from_legacy(opt), parsed

    parse_options_with_val.__wrapped__ = parse_options
    return parse_options_with_val


def apply() -> list[str]:
    """Apply every needed fix once; returns the names of the fixes applied (for logs and tests)."""
    global _applied
    if _applied:
        return []
    applied = []
    if install_functional_tensor_alias():
        applied.append("torchvision.transforms.functional_tensor alias")

    import basicsr.train
    import basicsr.utils.dist_util
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.models.base_model import BaseModel

    if _source_contains(basicsr.train.load_resume_state, "torch.cuda.current_device()"):
        basicsr.train.load_resume_state = load_resume_state
        applied.append("basicsr.train.load_resume_state")
    if _source_contains(basicsr.train.train_pipeline, "train_sampler.set_epoch(epoch)") and not hasattr(
            EnlargedSampler.__iter__, "__wrapped__"):
        EnlargedSampler.__iter__ = enlarged_sampler_iter(EnlargedSampler.__iter__)
        applied.append("EnlargedSampler.__iter__ resumes mid-epoch")
    if _source_contains(basicsr.utils.dist_util._init_dist_pytorch, "torch.cuda.set_device(rank % num_gpus)"):
        basicsr.utils.dist_util._init_dist_pytorch = init_dist_pytorch
        applied.append("basicsr.utils.dist_util._init_dist_pytorch")
    if _source_contains(BaseModel.model_to_device, "device_ids=[torch.cuda.current_device()]"):
        BaseModel.model_to_device = model_to_device
        applied.append("BaseModel.model_to_device")
    if _source_contains(basicsr.train.parse_options, "'--local_rank'") and not hasattr(
            basicsr.train.parse_options, "__wrapped__"):
        basicsr.train.parse_options = _wrap_parse_options(basicsr.train.parse_options)
        applied.append("basicsr.train.parse_options --local-rank")
    import basicsr.test

    if _source_contains(basicsr.test.test_pipeline, "opt['val']['save_img']") and not hasattr(
            basicsr.test.parse_options, "__wrapped__"):
        basicsr.test.parse_options = _wrap_test_parse_options(basicsr.test.parse_options)
        applied.append("basicsr.test.parse_options legacy val keys")
    _applied = True
    return applied
