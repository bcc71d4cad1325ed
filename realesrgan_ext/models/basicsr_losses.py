"""BasicSR's loss classes in this project's training step, with BasicSR's meaning (no copies of them).

``AdversarialSRModel`` calls a generator term as ``loss(output, target) -> tensor`` and a GAN loss
through ``generator_loss`` / ``discriminator_loss`` (``losses/gan_loss.py``). BasicSR's losses
have other interfaces, recognised here from their ``forward`` signatures:

* ``forward(pred, target, ...)`` (``L1Loss``, ``MSELoss``, ``CharbonnierLoss``): used as they are.
* ``forward(pred, weight=None)`` (``WeightedTVLoss``): one input, a regulariser of the output.
* ``forward(x, gt) -> (percep, style)`` (``PerceptualLoss``): both terms, logged as BasicSR's
  ``SRGANModel`` logs them (``l_g_percep``, ``l_g_style``), ``None`` ones skipped. Its VGG19 is
  the project's (``VGG19Features``), with the weights the option file names exactly as for
  ``VGGPerceptualLoss`` (``vgg_weights``: ``torchvision`` or the offline ``caffe``;
  ``vgg_weights_path``; ``allow_download``), so it works offline and never downloads by surprise.
* ``forward(input, target_is_real, is_disc)`` (``GANLoss``, ``MultiScaleGANLoss``): wrapped in
  ``BasicSRGANLoss``: the generator term is ``gan(D(fake), True)``, the discriminator's
  ``gan(D(real), True, is_disc=True)`` and ``gan(D(fake), False, is_disc=True)``, as ``SRGANModel``.

``loss_problems`` names the combinations that cannot train (also ``reduction: none``, a loss per
pixel), with the replacement, for the option
check (``AdversarialSRModel.option_conflicts``), so none fails at iteration 1.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from basicsr.losses import basic_loss, build_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from realesrgan_ext.archs.vgg19_features import VGG19Features
from realesrgan_ext.losses.vgg_weights import resolve_vgg19_weights

# Keys PerceptualLoss accepts here beyond its constructor: the VGG19 weights, as VGGPerceptualLoss.
WEIGHTS_OPTIONS = ("vgg_weights", "vgg_weights_path", "allow_download")
PERCEPTUAL_REPLACEMENT = "VGGPerceptualLoss"
GAN_REPLACEMENT = "GANLoss, VanillaGANLoss or RelativisticAverageGANLoss"


def _forward_parameters(loss_class: type) -> list[inspect.Parameter]:
    return list(inspect.signature(loss_class.forward).parameters.values())[1:]  # without self


def is_basicsr_gan_loss(loss_class: type) -> bool:
    """A loss with BasicSR's GAN interface ``forward(input, target_is_real, is_disc)``."""
    return any(p.name == "target_is_real" for p in _forward_parameters(loss_class))


def is_gan_loss(loss_class: type) -> bool:
    return is_basicsr_gan_loss(loss_class) or hasattr(loss_class, "generator_loss")


def takes_one_input(loss_class: type) -> bool:
    """``forward(pred, weight=None)``: a regulariser of the output alone (``WeightedTVLoss``)."""
    required = [p for p in _forward_parameters(loss_class)
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) == 1


@contextlib.contextmanager
def _project_vgg19(vgg_weights: str, vgg_weights_path: str | None, allow_download: bool) -> Iterator[None]:
    """While BasicSR's PerceptualLoss is built, its ``VGGFeatureExtractor`` is the project's VGG19
    with the named weights (BasicSR's would download torchvision's)."""
    original = basic_loss.VGGFeatureExtractor

    def extractor(layer_name_list, vgg_type="vgg19", use_input_norm=True, range_norm=False, **_):
        if vgg_type != "vgg19":
            raise ValueError(f"PerceptualLoss vgg_type {vgg_type!r}: only vgg19 weights are available offline")
        weights = resolve_vgg19_weights(vgg_weights_path, allow_download=allow_download, source=vgg_weights)
        return VGG19Features(layer_name_list, weights.state_dict, weights.input_convention,
                             use_input_norm=use_input_norm, range_norm=range_norm)

    basic_loss.VGGFeatureExtractor = extractor
    try:
        yield
    finally:
        basic_loss.VGGFeatureExtractor = original


def build_basicsr_loss(opt: Mapping[str, Any]) -> nn.Module:
    """``build_loss``, with PerceptualLoss's VGG19 from the weights ``opt`` names."""
    opt = dict(opt)
    if LOSS_REGISTRY.get(opt["type"]) is not basic_loss.PerceptualLoss:
        return build_loss(opt)
    weights = {key: opt.pop(key) for key in WEIGHTS_OPTIONS if key in opt}
    with _project_vgg19(weights.get("vgg_weights", "torchvision"), weights.get("vgg_weights_path"),
                        weights.get("allow_download", True)):
        return build_loss(opt)


class GeneratorTerm(nn.Module):
    """One generator loss section: ``term(output, target) -> {log name: loss}``."""

    def __init__(self, name: str, loss: nn.Module) -> None:
        super().__init__()
        self.name, self.loss = name, loss
        self.one_input = takes_one_input(type(loss))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        result = self.loss(output) if self.one_input else self.loss(output, target)
        if isinstance(result, tuple):  # PerceptualLoss: (perceptual, style), either may be None
            names = (self.name, self.name.replace("percep", "style") if "percep" in self.name else f"{self.name}_style")
            return {n: r for n, r in zip(names, result, strict=False) if r is not None}
        return {self.name: result}


class BasicSRGANLoss(nn.Module):
    """BasicSR's ``GANLoss`` interface as this project's ``generator_loss`` / ``discriminator_loss``."""

    needs_real_for_generator = False

    def __init__(self, gan: nn.Module) -> None:
        super().__init__()
        self.gan = gan

    def generator_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        return self.gan(fake_logits, True, is_disc=False)

    def discriminator_loss(self, real_logits: torch.Tensor,
                           fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gan(real_logits, True, is_disc=True), self.gan(fake_logits, False, is_disc=True)


def build_gan_loss(opt: Mapping[str, Any]) -> nn.Module:
    """The ``gan_opt`` loss with ``generator_loss`` / ``discriminator_loss`` (BasicSR's wrapped)."""
    loss = build_loss(dict(opt))
    return BasicSRGANLoss(loss) if is_basicsr_gan_loss(type(loss)) else loss


def loss_problems(train_opt: Mapping[str, Any], generator_keys: Mapping[str, str]) -> list[str]:
    """Loss sections that cannot train in ``AdversarialSRModel``, each with its replacement."""
    problems = []
    for key in (*generator_keys.values(), "gan_opt"):
        section = train_opt.get(key)
        if not isinstance(section, Mapping) or section.get("type") not in LOSS_REGISTRY:
            continue  # a missing or unknown type is reported by the option validation
        cls = LOSS_REGISTRY.get(section["type"])
        if key == "gan_opt" and not is_gan_loss(cls):
            problems.append(f"train.gan_opt.type: {section['type']} is not a GAN loss; use {GAN_REPLACEMENT}")
        elif key != "gan_opt" and is_gan_loss(cls):
            problems.append(f"train.{key}.type: {section['type']} is a GAN loss; put it under train.gan_opt "
                            f"(with network_d), and a pixel or perceptual loss here")
        elif cls is basic_loss.PerceptualLoss:
            problems.extend(_perceptual_problems(key, section))
        if section.get("reduction") == "none":
            problems.append(f"train.{key}.reduction: 'none' gives a loss per pixel, not a number to minimise; "
                            "use mean or sum")
    return problems


def _perceptual_problems(key: str, section: Mapping[str, Any]) -> list[str]:
    problems = []
    if section.get("vgg_type", "vgg19") != "vgg19":
        problems.append(f"train.{key}.vgg_type: {section['vgg_type']!r} has no offline weights here; use vgg19, "
                        f"or {PERCEPTUAL_REPLACEMENT} (VGG19, torchvision or caffe weights)")
    if section.get("criterion", "l1") == "l2":
        problems.append(f"train.{key}.criterion: 'l2' fails in BasicSR 1.4.2's PerceptualLoss (torch.nn.L2loss "
                        f"does not exist); use {PERCEPTUAL_REPLACEMENT} with criterion: mse")
    if not section.get("perceptual_weight", 1.0) and not section.get("style_weight", 0.0):
        problems.append(f"train.{key}: perceptual_weight and style_weight are both 0 (PerceptualLoss would "
                        "return no loss); set one above 0 or remove the section")
    return problems
