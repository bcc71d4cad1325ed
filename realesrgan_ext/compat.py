"""Every fix that basicsr 1.4.2 needs to run on current torch/torchvision and on CPU.

`apply()` runs once, from ``realesrgan_ext/__init__.py``, before anything of basicsr is imported.
Each fix names the basicsr line it replaces and why, and is applied only where that
line is still present, so a fixed basicsr release makes the fix a no-op.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import torch

_applied = False


def _source_contains(func: Callable, snippet: str) -> bool:
    """True when ``func``'s source still has ``snippet`` (the buggy line a fix replaces)."""
    try:
        return snippet in inspect.getsource(func)
    except (OSError, TypeError):
        return False


def install_functional_tensor_alias() -> bool:
    """Fix 1: ``basicsr/data/degradations.py:8`` imports ``torchvision.transforms.functional_tensor``.

    torchvision 0.17 renamed that module to ``_functional_tensor``; without an alias
    ``import basicsr`` fails. Returns True when the alias was needed.
    """
    try:
        importlib.import_module("torchvision.transforms.functional_tensor")
        return False
    except ImportError:
        pass
    private = importlib.import_module("torchvision.transforms._functional_tensor")
    alias = types.ModuleType("torchvision.transforms.functional_tensor")
    alias.__dict__.update({k: v for k, v in vars(private).items() if not k.startswith("__")})
    sys.modules[alias.__name__] = alias
    return True


def load_resume_state(opt: dict[str, Any]) -> dict[str, Any] | None:
    """Fix 2, replaces ``basicsr/train.py`` ``load_resume_state``.

    basicsr calls ``torch.cuda.current_device()`` (crashes without a GPU) and looks for
    ``experiments/NAME/training_states`` relative to the working directory instead of the
    experiment root. States are loaded to CPU: ``Optimizer.load_state_dict`` moves them to
    the parameters' device.
    """
    from basicsr.utils import check_resume

    path = None
    if opt["auto_resume"]:
        path = latest_training_state(opt["path"]["training_states"])
        if path is not None:
            opt["path"]["resume_state"] = path
    else:
        path = opt["path"].get("resume_state")
    if path is None:
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    check_resume(opt, state["iter"])
    return state


def latest_training_state(state_dir: str) -> str | None:
    """Path of the ``<iter>.state`` file with the highest iteration in ``state_dir``, if any."""
    if not os.path.isdir(state_dir):
        return None
    iters = [int(name[: -len(".state")]) for name in os.listdir(state_dir)
             if name.endswith(".state") and name[: -len(".state")].isdigit()]
    return os.path.join(state_dir, f"{max(iters)}.state") if iters else None


def init_dist_pytorch(backend: str = "nccl", **kwargs: Any) -> None:
    """Fix 3a, replaces ``basicsr/utils/dist_util.py`` ``_init_dist_pytorch``.

    basicsr hard-codes nccl and ``torch.cuda.set_device(rank % device_count)``: a
    ZeroDivisionError without a GPU, and the wrong device on every node after the first.
    Here: nccl and ``LOCAL_RANK``'s device with CUDA, gloo on CPU.
    """
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
    from basicsr.models.base_model import BaseModel

    if _source_contains(basicsr.train.load_resume_state, "torch.cuda.current_device()"):
        basicsr.train.load_resume_state = load_resume_state
        applied.append("basicsr.train.load_resume_state")
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
    _applied = True
    return applied
