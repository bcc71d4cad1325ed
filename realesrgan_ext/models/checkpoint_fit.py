"""Does a starting checkpoint fit the network of the option file? A clear answer before loading.

BasicSR's ``load_network`` answers a checkpoint of another architecture (a compact model's
weights named as the starting point of an RRDB fine-tune, an RRDB of another width) with
PyTorch's ``load_state_dict`` error: hundreds of key names. ``checkpoint_mismatch`` reads the file
as BasicSR would (``param_key``, else ``params``; ``module.`` stripped) and says in a few lines
what the file holds, what the network expects and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from realesrgan_ext.archs.rrdb_arch import split_variant_prefix

SHOWN = 3  # example keys per kind of difference


def _state_of(checkpoint: Any, param_key: str | None) -> Mapping[str, torch.Tensor] | None:
    if not isinstance(checkpoint, Mapping):
        return None
    if param_key is not None:
        key = param_key if param_key in checkpoint else "params"
        checkpoint = checkpoint.get(key)
    if not isinstance(checkpoint, Mapping):
        return None
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def _examples(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN]) + (", ..." if len(keys) > SHOWN else "")


def checkpoint_mismatch(net: torch.nn.Module, load_path: str, param_key: str | None, where: str,
                        net_opt: Mapping[str, Any] | None = None) -> str | None:
    """Why the checkpoint at ``load_path`` cannot load strictly into ``net`` (None when it can).

    ``where`` names the option (``path.pretrain_network_g``); ``net_opt`` is the network's section
    of the option file, quoted in the message.
    """
    checkpoint = torch.load(load_path, map_location="cpu", weights_only=True)
    state = _state_of(checkpoint, param_key)
    wanted, variant = split_variant_prefix({k: v.shape for k, v in net.state_dict().items()})
    if variant and state:  # an RRDB variant loads its keys with or without the prefix (older checkpoints)
        state = split_variant_prefix(dict(state))[0]
    net_desc = dict(net_opt) if net_opt else type(net).__name__
    if not state:
        return (f"{where}: {load_path} holds no network weights under {param_key!r} or 'params' "
                f"(keys: {sorted(checkpoint)[:6] if isinstance(checkpoint, Mapping) else type(checkpoint).__name__})")
    missing = [k for k in wanted if k not in state]
    unexpected = [k for k in state if k not in wanted]
    reshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(shape)}" for k, shape in wanted.items()
                if k in state and state[k].shape != shape]
    if not (missing or unexpected or reshaped):
        return None
    recorded = checkpoint.get("arch") if isinstance(checkpoint, Mapping) else None
    holds = f"a {dict(recorded)} network" if isinstance(recorded, Mapping) else f"{len(state)} tensors"
    details = []
    if missing:
        details.append(f"{len(missing)} of the network's {len(wanted)} tensors are not in the file "
                       f"({_examples(missing)})")
    if unexpected:
        details.append(f"{len(unexpected)} tensors of the file are not in the network ({_examples(unexpected)})")
    if reshaped:
        details.append(f"{len(reshaped)} differ in shape, file vs network ({_examples(reshaped)})")
    return (f"{where}: {load_path} is a checkpoint of another architecture: it holds {holds}, the option file's "
            f"network is {net_desc}; " + "; ".join(details) + ". Name a checkpoint of this architecture, or change "
            "the network section to match the file.")
