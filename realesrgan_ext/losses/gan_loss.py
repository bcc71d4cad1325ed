"""Adversarial losses on discriminator logits: vanilla GAN and relativistic average GAN (ESRGAN).

Both share one interface, so a model's training step is the same for either:

* ``generator_loss(real_logits, fake_logits)`` -> ``loss_weight * L_adv`` (the generator's term);
  ``real_logits`` may be ``None`` when ``needs_real_for_generator`` is False.
* ``discriminator_loss(real_logits, fake_logits)`` -> ``(real term, fake term)``, unweighted;
  ``L_D`` is their sum; backpropagate the sum, once.

Logits are the raw discriminator outputs (no sigmoid); every log-sigmoid is computed by
``binary_cross_entropy_with_logits`` for numerical stability. Means run over all elements.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from realesrgan_ext.registry import register_part


def _bce(logits: torch.Tensor, is_real: bool) -> torch.Tensor:
    """``-mean(log sigmoid(logits))`` for real, ``-mean(log(1 - sigmoid(logits)))`` for fake."""
    target = torch.ones_like(logits) if is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class AdversarialLoss(nn.Module):
    """Shared base: ``loss_weight`` and the two-method interface."""

    needs_real_for_generator: bool = False

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def generator_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * self._adversarial(real_logits, fake_logits)

    def discriminator_loss(self, real_logits: torch.Tensor,
                           fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _adversarial(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__}: call generator_loss(...) or discriminator_loss(...)")

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}"


@register_part("loss")
class VanillaGANLoss(AdversarialLoss):
    """Standard GAN with the non-saturating generator loss.

    ``L_D = -E[log D(HR)] - E[log(1 - D(G(LR)))]``, ``L_adv = -E[log D(G(LR))]``; D = sigmoid(C).
    """

    needs_real_for_generator = False

    def discriminator_loss(self, real_logits, fake_logits):
        return _bce(real_logits, True), _bce(fake_logits, False)

    def _adversarial(self, real_logits, fake_logits):
        return _bce(fake_logits, True)


@register_part("loss")
class RelativisticAverageGANLoss(AdversarialLoss):
    """Relativistic average GAN, ESRGAN (Wang et al. 2018) eqs. 1-2, scaled as BasicSR's ``ESRGANModel``.

    ``D_Ra(a, b) = sigmoid(C(a) - E[C(b)])``;
    ``L_D   = ½(-E[log D_Ra(xr, xf)]) + ½(-E[log(1 - D_Ra(xf, xr))])``;
    ``L_adv = ½(-E[log(1 - D_Ra(xr, xf))] - E[log D_Ra(xf, xr)])``, with the real logits detached.
    The halves are the authors' (BasicSR's ``ESRGANModel``): the published λ_adv = 5e-3 is meant
    for them. Each discriminator term backpropagates only through its own side's logits (the other
    side's mean is detached), as BasicSR's two separate ``backward`` calls do.
    """

    needs_real_for_generator = True

    def discriminator_loss(self, real_logits, fake_logits):
        real_term = 0.5 * _bce(real_logits - fake_logits.detach().mean(), True)
        fake_term = 0.5 * _bce(fake_logits - real_logits.detach().mean(), False)
        return real_term, fake_term

    def _adversarial(self, real_logits, fake_logits):
        if real_logits is None:
            raise ValueError("RelativisticAverageGANLoss.generator_loss needs the real logits D(HR)")
        real_logits = real_logits.detach()
        return 0.5 * (_bce(real_logits - fake_logits.mean(), False) + _bce(fake_logits - real_logits.mean(), True))
