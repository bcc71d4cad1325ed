"""train.speed options: each one checked for correctness on CPU against the plain fp32 step."""

import copy
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml
from test_adversarial_sr_model import batch, make_model, snapshot
from torch.nn.parallel import DistributedDataParallel

from realesrgan_ext.models.training_speed import TrainingSpeed
from realesrgan_ext.option_validation import OptionFileError, validate_options
from realesrgan_ext.tools.train_benchmark import random_vgg19_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def max_difference(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def one_step(tmp_path, seed=0, data=None, optim=None, **speed):
    tmp_path.mkdir(exist_ok=True)
    torch.manual_seed(seed)
    optims = {"optim_g": optim, "optim_d": optim} if optim else {}
    model = make_model(tmp_path, speed=speed, **optims)
    model.feed_data(data or batch())
    model.optimize_parameters(1)
    return model


@pytest.mark.parametrize("speed, message", [
    ({"precison": "bf16"}, "unknown key"),
    ({"precision": "int8"}, "precision: 'int8'"),
    ({"optimizer_impl": "turbo"}, "optimizer_impl: 'turbo'"),
    ({"grad_accum_steps": 0}, "grad_accum_steps: 0"),
    ({"compile": {"modee": "max-autotune"}}, "unknown torch.compile argument"),
])
def test_bad_speed_options_are_named(speed, message):
    with pytest.raises(ValueError, match=message):
        TrainingSpeed.from_options(speed)


def test_defaults_change_nothing(tmp_path):
    speed = TrainingSpeed.from_options(None)
    assert speed == TrainingSpeed() and speed.optimizer_kwargs(torch.optim.Adam) == {}
    plain = one_step(tmp_path / "a")
    explicit = one_step(tmp_path / "b", precision="fp32", channels_last=False, compile=False, grad_accum_steps=1)
    assert max_difference(snapshot(plain.net_g), snapshot(explicit.net_g)) == 0


def test_fp16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("checks the CPU refusal")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        make_model(tmp_path, speed={"precision": "fp16"})


def test_bf16_autocast_trains_close_to_fp32(tmp_path):
    sgd = {"type": "SGD", "lr": 1.0}  # the update is the gradient itself, so the two are comparable
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    models = {}
    for name, speed in (("a", {}), ("b", {"precision": "bf16"})):
        torch.manual_seed(0)
        models[name] = make_model(tmp_path / name, optim_g=sgd, optim_d=sgd, speed=speed)
        start = snapshot(models[name].net_g)
        models[name].feed_data(batch())
        models[name].optimize_parameters(1)
    fp32, bf16 = models["a"], models["b"]
    assert bf16.output.dtype == torch.bfloat16 and fp32.output.dtype == torch.float32
    assert (bf16.output.float() - fp32.output).abs().max() < 0.05
    assert bf16.get_current_log()["l_g_pix"] == pytest.approx(fp32.get_current_log()["l_g_pix"], rel=0.02)
    step32 = torch.cat([(v - start[k]).flatten() for k, v in snapshot(fp32.net_g).items()])
    step16 = torch.cat([(v - start[k]).flatten() for k, v in snapshot(bf16.net_g).items()])
    assert all(p.dtype == torch.float32 for p in bf16.net_g.parameters()), "weights stay fp32"
    assert torch.nn.functional.cosine_similarity(step16, step32, dim=0) > 0.95  # bf16: 8-bit mantissa


def test_channels_last_gives_the_fp32_step(tmp_path):
    sgd = {"type": "SGD", "lr": 0.1}  # Adam's first step is sign(gradient): rounding flips tiny ones
    plain = one_step(tmp_path / "a", optim=sgd)
    nhwc = one_step(tmp_path / "b", optim=sgd, channels_last=True)
    assert nhwc.net_g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.output.is_contiguous(memory_format=torch.channels_last)
    assert max_difference(snapshot(plain.net_g), snapshot(nhwc.net_g)) < 1e-5
    assert max_difference(snapshot(plain.net_d), snapshot(nhwc.net_d)) < 1e-5


@pytest.mark.parametrize("impl, flag", [("fused", ("fused", True)), ("foreach", ("foreach", True)),
                                        ("for_loop", ("foreach", False))])
def test_optimizer_impl_reaches_the_optimizer_and_matches(tmp_path, impl, flag):
    plain = one_step(tmp_path / "a")
    fast = one_step(tmp_path / "b", optimizer_impl=impl)
    assert fast.optimizer_g.defaults[flag[0]] is flag[1] and fast.optimizer_d.defaults[flag[0]] is flag[1]
    assert max_difference(snapshot(plain.net_g), snapshot(fast.net_g)) < 1e-6


def test_optimizer_impl_the_class_lacks_is_an_error():
    with pytest.raises(ValueError, match="LBFGS has no 'fused' option"):
        TrainingSpeed.from_options({"optimizer_impl": "fused"}).optimizer_kwargs(torch.optim.LBFGS)


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    """PSNR stage, L1 (a mean over elements): two micro-batches of 2 = one batch of 4."""
    full = batch()
    full = {k: torch.cat([v, batch(1)[k]]) for k, v in full.items()}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    torch.manual_seed(0)
    big = make_model(tmp_path / "a", with_d=False, gan_opt=None)
    big.feed_data(full)
    big.optimize_parameters(1)

    torch.manual_seed(0)
    acc = make_model(tmp_path / "b", with_d=False, gan_opt=None, speed={"grad_accum_steps": 2})
    before, ema_before = snapshot(acc.net_g), snapshot(acc.net_g_ema)
    acc.feed_data({k: v[:2] for k, v in full.items()})
    acc.optimize_parameters(1)
    assert max_difference(before, snapshot(acc.net_g)) == 0, "no step before the window ends"
    assert max_difference(ema_before, snapshot(acc.net_g_ema)) == 0, "nor an EMA update"
    acc.feed_data({k: v[2:] for k, v in full.items()})
    acc.optimize_parameters(2)
    assert max_difference(snapshot(big.net_g), snapshot(acc.net_g)) < 1e-6
    assert all(p.grad is None for p in acc.net_g.parameters()), "gradients cleared after the step"
    assert max_difference(ema_before, snapshot(acc.net_g_ema)) > 0, "the EMA follows the step"
    assert max_difference(snapshot(big.net_g_ema), snapshot(acc.net_g_ema)) < 1e-6


@pytest.fixture
def one_process_group():
    """A one-process gloo group, so the model wraps its networks in DistributedDataParallel."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_accumulation_under_ddp_defers_the_all_reduce(tmp_path, one_process_group, monkeypatch):
    """no_sync wraps G's and D's forward and backward inside the window, not on its last iteration."""
    entered = []
    real_no_sync = DistributedDataParallel.no_sync

    def recording_no_sync(self):
        entered.append(self)
        return real_no_sync(self)

    monkeypatch.setattr(DistributedDataParallel, "no_sync", recording_no_sync)
    models = {}
    for name, use_ddp in (("plain", False), ("ddp", True)):
        (tmp_path / name).mkdir()
        torch.manual_seed(0)
        models[name] = make_model(tmp_path / name, dist=use_ddp, speed={"grad_accum_steps": 2})
    ddp = models["ddp"]
    assert isinstance(ddp.net_g, DistributedDataParallel) and isinstance(ddp.net_d, DistributedDataParallel)
    for it in (1, 2):
        for model in models.values():
            model.feed_data(batch(it))
            model.optimize_parameters(it)
        assert entered == ([ddp.net_g, ddp.net_d] if it == 1 else [])
        entered.clear()
    assert max_difference(snapshot(models["plain"].net_g), snapshot(ddp.get_bare_model(ddp.net_g))) < 1e-6
    assert max_difference(snapshot(models["plain"].net_d), snapshot(ddp.get_bare_model(ddp.net_d))) < 1e-6


def test_nan_guard_restores_batchnorm_statistics(tmp_path):
    """A skipped step leaves G's and D's running statistics as they were before its forward."""
    model = make_model(tmp_path, network_g={"type": "SRResNetGenerator", "scale": 4, "num_block": 1, "num_feat": 8,
                                            "use_batchnorm": True})
    stats = {k: v.clone() for net in (model.net_g, model.net_d) for k, v in net.state_dict().items()
             if "running" in k}
    assert any(k.startswith("bn") for k in stats) and len(stats) > 4
    data = batch()
    data["lq"][0, 0, 0, 0] = float("nan")
    model.feed_data(data)
    model.optimize_parameters(1)
    assert model.skipped_steps == 2
    after = {k: v for net in (model.net_g, model.net_d) for k, v in net.state_dict().items() if "running" in k}
    assert all(torch.equal(stats[k], after[k]) for k in stats)
    model.feed_data(batch(1))
    model.optimize_parameters(2)
    assert any(not torch.equal(stats[k], v) for net in (model.net_g,) for k, v in net.state_dict().items()
               if "running_mean" in k), "a good step still updates the statistics"


@pytest.mark.slow
def test_compile_keeps_checkpoint_keys_and_results(tmp_path):
    plain = one_step(tmp_path / "a")
    compiled = one_step(tmp_path / "b", compile={"backend": "eager"})
    assert compiled.net_g._compiled_call_impl is not None and compiled.net_d._compiled_call_impl is not None
    assert set(compiled.net_g.state_dict()) == set(plain.net_g.state_dict())
    assert max_difference(snapshot(plain.net_g), snapshot(compiled.net_g)) < 1e-6


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_step_on_cuda(tmp_path, precision):
    model = make_model(tmp_path, num_gpu=1, speed={"precision": precision, "channels_last": True})
    assert model.device.type == "cuda" and bool(model.scalers) == (precision == "fp16")
    before = snapshot(model.net_g)
    for it in (1, 2):
        model.feed_data(batch(it))
        model.optimize_parameters(it)
    assert model.output.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    after = snapshot(model.net_g)
    assert all(torch.isfinite(v).all() for v in after.values()) and max_difference(before, after) > 0


def test_option_file_validation_accepts_speed_and_names_a_bad_one():
    opt = yaml.safe_load((Path(__file__).parent / "data" / "tiny_esrgan_x4.yml").read_text())
    opt["train"]["speed"] = {"precision": "bf16", "channels_last": True, "grad_accum_steps": 2}
    validate_options(copy.deepcopy(opt), "my.yml")
    opt["train"]["speed"]["chanels_last"] = True
    with pytest.raises(OptionFileError, match=r"train.speed: unknown key\(s\) \['chanels_last'\]"):
        validate_options(opt, "my.yml")


@pytest.fixture
def vgg_file():
    with random_vgg19_file() as path:
        yield path


def test_bf16_stores_the_frozen_vgg_cast_once_with_the_same_step(tmp_path, monkeypatch, vgg_file):
    perceptual = {"type": "VGGPerceptualLoss", "layer_weights": {"conv3_4": 1.0, "conv5_4": 0.5},
                  "vgg_weights": "torchvision", "vgg_weights_path": str(vgg_file)}
    models = {}
    for name in ("cast_once", "cast_per_call"):
        if name == "cast_per_call":
            monkeypatch.setattr(TrainingSpeed, "prepare_frozen", lambda self, module: module)
        (tmp_path / name).mkdir()
        torch.manual_seed(0)
        models[name] = make_model(tmp_path / name, speed={"precision": "bf16"}, perceptual_opt=perceptual)
        for it in (1, 2):
            models[name].feed_data(batch(seed=it))
            models[name].optimize_parameters(it)
    convs = {name: [m for m in model.generator_losses["l_g_percep"].modules() if isinstance(m, torch.nn.Conv2d)]
             for name, model in models.items()}
    assert {c.weight.dtype for c in convs["cast_once"]} == {torch.bfloat16}
    assert {c.weight.dtype for c in convs["cast_per_call"]} == {torch.float32}
    once, per_call = models["cast_once"], models["cast_per_call"]
    assert once.get_current_log()["l_g_percep"] == per_call.get_current_log()["l_g_percep"] != 0
    assert max_difference(snapshot(once.net_g), snapshot(per_call.net_g)) == 0  # the same numbers, fewer casts


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_is_bf16_only_where_the_cpu_computes_it(monkeypatch, native):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    speed = TrainingSpeed.from_options({"precision": "auto"}, "cpu")
    assert speed.precision == ("bf16" if native else "fp32")
    with pytest.raises(ValueError, match=r"expected one of \['fp32', 'bf16', 'fp16', 'auto'\]"):
        TrainingSpeed.from_options({"precision": "bf17"})
