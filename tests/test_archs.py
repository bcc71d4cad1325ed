"""Architectures: output shapes, BasicSR checkpoint compatibility, registry, input checks."""

import pytest
import torch
from basicsr.archs import build_network
from basicsr.archs.discriminator_arch import VGGStyleDiscriminator
from basicsr.archs.rrdbnet_arch import RRDBNet

from realesrgan_ext.archs.rrdb_arch import (
    GLOBAL_SKIPS,
    UPSAMPLERS,
    VARIANT_PREFIXES,
    RRDBGenerator,
    split_variant_prefix,
)
from realesrgan_ext.archs.srresnet_arch import SRResNetGenerator
from realesrgan_ext.archs.vgg_discriminator_arch import VGGDiscriminator, auto_num_stages

TINY_RRDB = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
ESRGAN_X4_PARAMS = 16_697_987  # RRDB_ESRGAN_x4.pth / RealESRGAN_x4plus.pth
LR = 16


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_default_rrdb_matches_esrgan_parameter_count():
    with torch.device("meta"):  # shapes only: skips allocating and initialising 16.7M weights
        net = RRDBGenerator()
    assert _num_params(net) == ESRGAN_X4_PARAMS
    assert (net.scale, net.num_in_ch, net.num_out_ch, net.size_multiple) == (4, 3, 3, 1)


@pytest.mark.parametrize("scale,multiple", [(1, 4), (2, 2), (4, 1), (8, 1)])
@pytest.mark.parametrize("upsampler", ["nearest", "pixelshuffle"])
def test_rrdb_output_shape(scale, multiple, upsampler):
    net = RRDBGenerator(3, 1, scale=scale, upsampler=upsampler, **TINY_RRDB).eval()
    assert net.size_multiple == multiple
    with torch.no_grad():
        out = net(torch.rand(2, 3, LR, LR))
    assert out.shape == (2, 1, LR * scale, LR * scale)


def test_rrdb_x8_and_pixelshuffle_layer_names():
    keys = RRDBGenerator(scale=8, **TINY_RRDB).state_dict().keys()
    assert {"conv_up1.weight", "conv_up2.weight", "conv_up3.weight"} <= keys
    state = RRDBGenerator(upsampler="pixelshuffle", **TINY_RRDB).state_dict()
    assert state["pixelshuffle.conv_shuffle1.weight"].shape[0] == 4 * TINY_RRDB["num_feat"]
    assert not any(".conv_up" in k for k in state)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdb_state_dict_and_outputs_match_basicsr(scale):
    ours = RRDBGenerator(3, 3, scale=scale, **TINY_RRDB).eval()
    theirs = RRDBNet(3, 3, scale=scale, **TINY_RRDB).eval()
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in theirs_sd.items()}

    x = torch.rand(1, 3, LR, LR)
    theirs.load_state_dict(ours_sd, strict=True)  # ours -> basicsr
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    torch.manual_seed(1)
    fresh = RRDBNet(3, 3, scale=scale, **TINY_RRDB).eval()
    ours.load_state_dict(fresh.state_dict(), strict=True)  # basicsr -> ours
    with torch.no_grad():
        assert torch.allclose(ours(x), fresh(x), atol=1e-6)


def test_rrdb_rejects_bad_options_and_sizes():
    with pytest.raises(ValueError, match="scale"):
        RRDBGenerator(scale=3, **TINY_RRDB)
    with pytest.raises(ValueError, match="upsampler"):
        RRDBGenerator(upsampler="bicubic", **TINY_RRDB)
    with pytest.raises(ValueError, match="divisible by 4"):
        RRDBGenerator(scale=1, **TINY_RRDB)(torch.rand(1, 3, 18, 16))


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("use_batchnorm", [True, False])
def test_srresnet_output_shape(scale, use_batchnorm):
    net = SRResNetGenerator(3, 3, scale=scale, num_feat=8, num_block=2, use_batchnorm=use_batchnorm).eval()
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert has_bn == use_batchnorm
    with torch.no_grad():
        out = net(torch.rand(2, 3, LR, LR))
    assert out.shape == (2, 3, LR * scale, LR * scale)
    assert (net.scale, net.size_multiple) == (scale, 1)


@pytest.mark.parametrize("size,stages", [(32, 3), (96, 4), (128, 5)])
def test_vgg_discriminator_one_logit_per_image(size, stages):
    net = VGGDiscriminator(3, num_feat=8, input_size=size)
    assert net.num_stages == stages == auto_num_stages(size)
    out = net(torch.rand(2, 3, size, size))  # train mode: BN needs a batch > 1
    assert out.shape == (2, 1)


def test_vgg_discriminator_loads_basicsr_checkpoint():
    theirs = VGGStyleDiscriminator(3, 8, input_size=128).eval()
    ours = VGGDiscriminator(3, 8, input_size=128).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_vgg_discriminator_size_errors():
    with pytest.raises(ValueError, match="32.*got 16"):
        VGGDiscriminator(input_size=16)
    net = VGGDiscriminator(3, num_feat=8, input_size=64)
    with pytest.raises(ValueError, match="input_size=64.*48x48"):
        net(torch.rand(2, 3, 48, 48))


@pytest.mark.parametrize("net,size", [
    (RRDBGenerator(upsampler="pixelshuffle", **TINY_RRDB), LR),
    (SRResNetGenerator(num_feat=8, num_block=1), LR),
    (VGGDiscriminator(num_feat=8, input_size=32), 32),
])
def test_training_step_backpropagates(net, size):
    """In-place activations must not break autograd in train mode."""
    net.train()(torch.rand(2, 3, size, size)).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("opt,cls", [
    ({"type": "RRDBGenerator", "num_in_ch": 3, "num_out_ch": 3, "scale": 2, **TINY_RRDB}, RRDBGenerator),
    ({"type": "SRResNetGenerator", "num_feat": 8, "num_block": 1}, SRResNetGenerator),
    ({"type": "VGGDiscriminator", "num_feat": 8, "input_size": 96}, VGGDiscriminator),
])
def test_build_network_builds_ours(opt, cls):
    net = build_network(opt)
    assert type(net) is cls


def test_rrdb_global_skip_starts_at_interpolation_and_marks_its_keys():
    x = torch.rand(1, 3, 8, 12)
    net = RRDBGenerator(num_feat=8, num_block=1, num_grow_ch=4, scale=4, global_skip="bicubic")
    expected = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(net(x), expected, atol=1e-6)
    plain = RRDBNet(3, 3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    state = net.state_dict()  # the same tensors as ESRGAN's, under a prefix naming the variant
    assert list(state) == [f"bicubic_skip.{k}" for k in plain.state_dict()]
    assert split_variant_prefix(state)[1] == {"upsampler": "nearest", "global_skip": "bicubic"}
    net.load_state_dict(plain.state_dict(), strict=True)  # unprefixed keys (older checkpoints) load too
    assert torch.allclose(net(x), plain(x) + expected, atol=1e-5)
    again = RRDBGenerator(num_feat=8, num_block=1, num_grow_ch=4, scale=4, global_skip="bicubic")
    again.load_state_dict(net.state_dict(), strict=True)
    assert torch.equal(again(x), net(x))
    wrapped = torch.nn.Sequential(net).state_dict()  # nested (DDP's module., EMA copies): the prefix follows
    assert "0.bicubic_skip.conv_first.weight" in wrapped
    with pytest.raises(RuntimeError, match="Missing key"):
        plain.load_state_dict(state)  # BasicSR's RRDBNet refuses it instead of computing another network
    shuffle = RRDBGenerator(num_feat=8, num_block=1, num_grow_ch=4, upsampler="pixelshuffle", global_skip="bilinear")
    assert next(iter(shuffle.state_dict())) == "pixelshuffle_bilinear_skip.conv_first.weight"
    assert len(VARIANT_PREFIXES) == len(UPSAMPLERS) * len(GLOBAL_SKIPS) - 1
    with pytest.raises(ValueError, match="global_skip"):
        RRDBGenerator(num_feat=8, num_block=1, global_skip="lanczos")
