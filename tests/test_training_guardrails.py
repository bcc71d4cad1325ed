"""Fine-tuning guardrails: the iteration-0 baseline, val.keep_best, the collapse guard, a starting
checkpoint of another architecture."""

import json
import math
import shutil
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from basicsr.models import build_model
from helpers import read_log, run_train, smooth_image, write_pair_folders
from torch.utils.data import DataLoader

from realesrgan_ext.archs.rrdb_arch import variant_prefix
from realesrgan_ext.data.paired_lrhr_dataset import PairedLRHRDataset
from realesrgan_ext.models.collapse_guard import CollapseGuardOptions, OutputCheck
from realesrgan_ext.models.training_guardrails import TrainingCollapse
from realesrgan_ext.option_validation import validate_options

REPO = Path(__file__).resolve().parents[1]
TINY_SKIP = {"type": "RRDBGenerator", "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4,
             "global_skip": "bicubic"}
TINY = {k: v for k, v in TINY_SKIP.items() if k != "global_skip"}
LAST = variant_prefix(global_skip="bicubic") + "conv_last."  # TINY_SKIP's last conv, under its variant's key prefix


def image_tensor(seed: int, size: int = 32) -> torch.Tensor:
    bgr = smooth_image(size, size, seed=seed)
    return torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1).float().div(255)[None]


# ---- the measures of the collapse guard ------------------------------------------------------------
def test_guard_passes_a_faithful_upscale_and_names_each_kind_of_collapse():
    lq = torch.cat([image_tensor(s, 16) for s in range(3)])
    good = torch.nn.functional.interpolate(lq, scale_factor=4, mode="bicubic").clamp(0, 1)
    bounds = CollapseGuardOptions()

    def problems(output):
        check = OutputCheck()
        check.add(lq, output)
        return " ".join(check.problems(bounds))

    assert problems(good) == ""
    flat = good.mean(dim=(2, 3), keepdim=True).expand_as(good)
    assert "lost its variance" in problems(flat)
    gray = good.mean(dim=1, keepdim=True).expand_as(good)
    assert "turned gray" in problems(gray) and "variance" not in problems(gray)
    darker = good * torch.tensor([0.7, 0.8, 0.9]).view(1, 3, 1, 1)
    assert "drifted in colour" in problems(darker)
    assert "lost its variance" in problems(torch.full_like(good, float("nan")))  # a diverged network
    gray_input = lq.mean(dim=1, keepdim=True).expand_as(lq)  # a gray photo cannot turn gray
    check = OutputCheck()
    check.add(gray_input, torch.nn.functional.interpolate(gray_input, scale_factor=4, mode="bicubic"))
    assert math.isnan(check.measures()["chroma_ratio"]) and check.problems(bounds) == []


def test_guard_lets_a_fine_tune_remove_strong_colour_noise():
    """A denoising fine-tune's clean output of a noisy input is not a collapse: colour noise on gray
    photos is not colour the output lost. A gray output of colour photos still is."""
    noise = torch.Generator().manual_seed(0)

    def noisy(clean):
        return (clean + 0.15 * torch.randn(clean.shape, generator=noise)).clamp(0, 1)

    def problems(lq, output):
        check = OutputCheck()
        check.add(lq, output)
        return " ".join(check.problems(CollapseGuardOptions()))

    colour = torch.cat([image_tensor(s, 64) for s in range(2)])
    gray = colour.mean(dim=1, keepdim=True).expand_as(colour)
    for clean in (gray, colour):
        denoised = torch.nn.functional.interpolate(clean, scale_factor=4, mode="bicubic").clamp(0, 1)
        assert problems(noisy(clean), denoised) == ""
    assert "turned gray" in problems(noisy(colour), denoised.mean(dim=1, keepdim=True).expand_as(denoised))


@pytest.mark.parametrize("val, message", [
    ({"keep_best": "lpips"}, "val.keep_best: 'lpips' is not a metric of val.metrics (configured: ['psnr', 'ssim',"),
    ({"collapse_guard": {"min_std_ratio": 2}}, "val.collapse_guard.min_std_ratio: expected a number in [0, 1]"),
    ({"collapse_guard": {"min_std": 0.5}}, "val.collapse_guard: unknown key(s) ['min_std']"),
    ({"val_at_start": "yes"}, "val.val_at_start: expected true or false"),
])
def test_guardrail_options_are_validated(val, message):
    opt = yaml.safe_load((REPO / "tests" / "data" / "tiny_esrgan_x4.yml").read_text())
    opt["val"].update(val)
    with pytest.raises(ValueError) as error:
        validate_options(opt, "tiny.yml")
    assert message in str(error.value)
    opt["val"] = {**opt["val"], "keep_best": "psnr", "collapse_guard": {"max_color_shift": 0.1}, "val_at_start": True}
    validate_options(opt, "tiny.yml")  # the keys themselves are accepted


# ---- keep_best, in the model class ------------------------------------------------------------------
def make_model(tmp_path, start: Path, train: dict | None = None, **val):
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    opt = {"name": "unit", "model_type": "AdversarialSRModel", "scale": 4, "num_gpu": 0, "dist": False,
           "is_train": True, "rank": 0, "world_size": 1, "network_g": dict(TINY_SKIP),
           "datasets": {"val": {"name": "my_val"}},
           "path": {"models": str(models), "training_states": str(tmp_path), "pretrain_network_g": str(start),
                    "param_key_g": "params", "strict_load_g": True, "visualization": str(tmp_path / "vis")},
           "train": {"optim_g": {"type": "Adam", "lr": 1e-4}, "pixel_opt": {"type": "PixelLoss"},
                     "scheduler": {"type": "MultiStepLR", "milestones": [100], "gamma": 0.5}, **(train or {})},
           "val": {"val_freq": 10, "save_img": False,
                   "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 0}}, **val}}
    return build_model(opt)


def with_noise(net, scale: float) -> dict[str, torch.Tensor]:
    """The generator's weights with the last convolution set to ``scale``-sized noise (0: bicubic exactly)."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    state[f"{LAST}weight"] = torch.randn(state[f"{LAST}weight"].shape, generator=g) * scale
    state[f"{LAST}bias"] = torch.zeros_like(state[f"{LAST}bias"])
    return state


def val_loader(tmp_path) -> DataLoader:
    hr, lr = write_pair_folders(tmp_path / "val", ["a", "b"], hr_size=32)
    dataset = PairedLRHRDataset({"name": "my_val", "dataroot_gt": str(hr), "dataroot_lq": str(lr), "scale": 4,
                                 "phase": "val"})
    return DataLoader(dataset, batch_size=1)


@pytest.mark.parametrize("better, best_at", [("higher", 20), ("lower", 10)])
def test_keep_best_keeps_the_best_checkpoint_baseline_included(tmp_path, one_torch_thread, better, best_at):
    from basicsr.archs import build_network

    net = build_network(dict(TINY_SKIP))
    start = tmp_path / "start.pth"
    torch.save({"params": with_noise(net, 0.05)}, start)  # a fair model: bicubic plus a little noise
    model = make_model(tmp_path, start, keep_best="psnr")
    model.opt["val"]["metrics"]["psnr"]["better"] = better
    model.init_guardrails()
    loader = val_loader(tmp_path)
    weights = {10: with_noise(model.net_g, 0.5), 20: with_noise(model.net_g, 0.0), 30: with_noise(model.net_g, 0.1)}
    scores = {}
    for it, state in weights.items():  # iteration 10 worst, 20 best (bicubic), 30 between
        model.net_g.load_state_dict(state)
        model.validation(loader, it, None, False)
        scores[it] = model.metric_results["psnr"]
        if it == 10:
            scores[0] = model.best.baseline  # the baseline ran first, as iteration 0, on the starting weights
    assert scores[10] < scores[0] < scores[20] and scores[30] < scores[20]
    record = json.loads((tmp_path / "models" / "net_g_best.json").read_text())
    assert record["iteration"] == best_at and record["better"] == better and record["metric"] == "psnr"
    assert record["value"] == pytest.approx(scores[best_at]) and record["baseline"] == pytest.approx(scores[0])
    saved = torch.load(tmp_path / "models" / "net_g_best.pth", weights_only=True)
    assert torch.equal(saved["params"][f"{LAST}weight"], weights[best_at][f"{LAST}weight"])
    assert saved["arch"]["type"] == "RRDBGenerator"
    assert torch.equal(model.net_g.state_dict()[f"{LAST}weight"], weights[30][f"{LAST}weight"])  # not swapped


def test_guard_stops_on_a_collapse_and_only_the_validating_process_judges(tmp_path, one_torch_thread):
    from basicsr.archs import build_network

    start = tmp_path / "start.pth"
    torch.save({"params": with_noise(build_network(dict(TINY_SKIP)), 0.0)}, start)  # bicubic: healthy
    model = make_model(tmp_path, start, collapse_guard=True)
    loader = val_loader(tmp_path)
    model.validation(loader, 10, None, False)  # the baseline (iteration 0) and iteration 10 pass
    assert json.loads((tmp_path / "models" / "net_g_last_good.json").read_text())["iteration"] == 10
    flat = with_noise(model.net_g, 0.0)
    flat[f"{LAST}bias"] -= 5  # the output clamps to black: no variance, no colour
    model.net_g.load_state_dict(flat)
    model.opt["rank"] = 1  # a DDP process that BasicSR does not let validate must not judge
    model.validation(loader, 20, None, False)
    model.opt["rank"] = 0
    with pytest.raises(TrainingCollapse, match=r"at iteration 30: the generator's output on my_val lost its "
                                               r"variance .* The last good checkpoint: .*net_g_last_good.pth "
                                               r"\(iteration 10\)"):
        model.validation(loader, 30, None, False)
    assert json.loads((tmp_path / "models" / "net_g_last_good.json").read_text())["iteration"] == 10


def test_a_starting_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    from basicsr.archs import build_network

    compact = build_network({"type": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2, "upscale": 4})
    start = tmp_path / "compact.pth"
    torch.save({"params": compact.state_dict(), "arch": {"type": "SRVGGNetCompact", "num_feat": 8}}, start)
    with pytest.raises(ValueError) as error:
        make_model(tmp_path, start)
    message = str(error.value)
    assert message.startswith(f"path.pretrain_network_g: {start} is a checkpoint of another architecture")
    assert "'SRVGGNetCompact'" in message and "'RRDBGenerator'" in message and "conv_first.weight" in message
    assert len(message) < 1200

    wider = build_network({**TINY_SKIP, "num_feat": 16})
    torch.save({"params": wider.state_dict()}, start)
    with pytest.raises(ValueError, match=r"differ in shape, file vs network \(conv_first.weight \(16, 3, 3, 3\) "
                                         r"vs \(8, 3, 3, 3\)"):
        make_model(tmp_path, start)


# ---- a deliberately bad fine-tune through train.py ---------------------------------------------------
def nearest_upscaler(path: Path) -> None:
    """A tiny RRDB (no global skip) set to nearest-neighbour upscaling: a sane starting model whose
    output keeps the input's variance and colour exactly."""
    from basicsr.archs import build_network

    net = build_network(dict(TINY))
    with torch.no_grad():
        for name, conv in net.named_modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.weight.zero_()
                conv.bias.zero_()
                if name in ("conv_first", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
                    for c in range(3):
                        conv.weight[c, c, 1, 1] = 1  # the body adds zero: RGB goes through, upsampled
    torch.save({"params": net.state_dict()}, path)


@pytest.mark.slow
def test_bad_learning_rate_is_stopped_by_the_guard_with_the_baseline_kept(tmp_path, one_torch_thread):
    shutil.copy(REPO / "train.py", tmp_path / "train.py")
    start = tmp_path / "start.pth"
    nearest_upscaler(start)
    write_pair_folders(tmp_path / "train", [f"t{i}" for i in range(4)], hr_size=32)
    write_pair_folders(tmp_path / "val", ["v0", "v1"], hr_size=32)
    opt = yaml.safe_load((REPO / "tests" / "data" / "tiny_esrgan_x4.yml").read_text())
    opt.update(name="bad_lr", network_g=dict(TINY))
    opt.pop("network_d", None)
    opt["train"] = {"optim_g": {"type": "Adam", "lr": 1e-2}, "pixel_opt": {"type": "PixelLoss"},
                    "scheduler": {"type": "MultiStepLR", "milestones": [100], "gamma": 0.5}, "total_iter": 40}
    opt["path"].update(pretrain_network_g=str(start), param_key_g="params")
    for phase, root in (("train", "train"), ("val", "val")):
        opt["datasets"][phase].update(dataroot_gt=str(tmp_path / root / "high_res"),
                                      dataroot_lq=str(tmp_path / root / "low_res"))
    opt["val"] = {"val_freq": 5, "save_img": False, "keep_best": "psnr", "collapse_guard": True,
                  "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 0}}}
    opt["logger"].update(print_freq=5, save_checkpoint_freq=5, use_tb_logger=True)
    opt_path = tmp_path / "bad_lr.yml"
    opt_path.write_text(yaml.safe_dump(opt))
    with pytest.raises(AssertionError) as failed:
        run_train(tmp_path, opt_path)
    output = str(failed.value)
    exp = tmp_path / "experiments" / "bad_lr"
    record = json.loads((exp / "models" / "net_g_best.json").read_text())
    stopped = int(output.split("collapse guard stopped training at iteration ")[1].split(":")[0])
    assert 0 < stopped < 40 and stopped % 5 == 0 and record["iteration"] < stopped
    assert f"last good checkpoint: {exp / 'models'}/net_g_best.pth (iteration {record['iteration']}" in output
    assert record["baseline"] > 15  # nearest-neighbour upscaling of smooth images
    assert "Traceback" not in output.split("error: collapse guard")[-1]
    if record["iteration"] == 0:  # the starting model is the one kept
        kept = torch.load(exp / "models" / "net_g_best.pth", weights_only=True)["params"]
        assert all(torch.equal(kept[k], v) for k, v in torch.load(start, weights_only=True)["params"].items())

    from realesrgan_ext.tools.training_plot_logs import parse_train_log, read_training_scalars

    scalars = read_training_scalars(exp)  # tensorboard events
    assert scalars.source.startswith("tensorboard")
    assert scalars.metrics["tiny_val"]["psnr"][0] == pytest.approx(record["baseline"], abs=1e-3)
    text = parse_train_log(read_log(exp))  # and the text log puts the baseline at iteration 0 too
    assert sorted(text.tags["metrics/tiny_val/psnr"]) == list(range(0, stopped + 1, 5))
    from realesrgan_ext.tools.training_plots import plot_validation

    starts = [line for line in plot_validation(scalars).axes[0].get_lines() if line.get_linestyle() == ":"]
    assert len(starts) == 1 and starts[0].get_ydata()[0] == pytest.approx(record["baseline"], abs=1e-3)


# ---- the recipes and the demo's validation split ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["finetune_realesrgan_x4plus", "finetune_realesrgan_x4plus_pairdata",
                                    "finetune_realesr_animevideov3", "finetune_demo_x4plus"])
def test_recipes_start_from_a_bundled_checkpoint_that_fits(recipe):
    from basicsr.archs import build_network

    from realesrgan_ext.models.adversarial_sr_model import resolve_pretrained
    from realesrgan_ext.models.checkpoint_fit import checkpoint_mismatch

    opt = yaml.safe_load((REPO / "options" / f"{recipe}.yml").read_text())
    val = opt["val"]
    assert val["keep_best"] in val["metrics"] and val["collapse_guard"] is True  # guarded by default
    fresh_d = (opt.get("network_d") or {}).get("type")
    warm_up = {None: 0, "ProjectedVGGDiscriminator": 10}.get(fresh_d, 1000)  # on frozen VGG features it learns fast
    assert opt["train"]["optim_g"]["lr"] <= 1e-4 and opt["train"].get("net_d_init_iters", 0) >= warm_up
    net = build_network(dict(opt["network_g"]))
    path = resolve_pretrained(opt["path"]["pretrain_network_g"])
    assert checkpoint_mismatch(net, path, opt["path"]["param_key_g"], "path.pretrain_network_g") is None


def test_finetune_split_holds_out_whole_photos(tmp_path):
    from realesrgan_ext.data.degradation_options import parse_degradation_options
    from realesrgan_ext.data.realesrgan_hr_dataset import RealESRGANHRDataset
    from realesrgan_ext.tools.finetune_split import make_finetune_split
    from realesrgan_ext.tools.image_files import DataToolError

    hr = tmp_path / "hr"
    hr.mkdir()
    names = ("a_s001", "a_s002", "a_s003", "b_s001", "b_s002", "c_s001", "solo")
    for name in names:
        cv2.imwrite(str(hr / f"{name}.png"), smooth_image(48, 48, seed=len(name)))
    options = parse_degradation_options({"kernel_size_range": [3, 5], "second_order": False})
    split = make_finetune_split(hr, tmp_path / "split", options, 4, crop=32, copies=2, seed=0, val_photos=2)
    trained = [line.removesuffix(".png") for line in split.train_list.read_text().split()]
    validated = sorted({p.name.rsplit("_d", 1)[0] for p in (split.val_dir / "low_res").iterdir()})
    photo = lambda name: name.split("_s")[0]  # noqa: E731
    assert len({photo(n) for n in validated}) == 2 and not {photo(n) for n in validated} & {photo(n) for n in trained}
    assert sorted(trained + validated) == sorted(names)  # every tile of a held-out photo, none of the others
    assert split.val_count == 2 * len(validated) and split.train_count == len(trained)
    again = make_finetune_split(hr, tmp_path / "again", options, 4, crop=32, copies=2, seed=0, val_photos=2)
    assert again.train_list.read_text() == split.train_list.read_text()  # the same draw
    with pytest.raises(DataToolError, match="cannot hold out 4 of 4 photo"):
        make_finetune_split(hr, tmp_path / "bad", options, 4, val_photos=4)
    pairs = PairedLRHRDataset({"name": "v", "dataroot_gt": str(split.val_dir / "high_res"), "scale": 4,
                               "dataroot_lq": str(split.val_dir / "low_res"), "phase": "val"})
    assert pairs[0]["gt"].shape == (3, 32, 32) and pairs[0]["lq"].shape == (3, 8, 8)
    train = RealESRGANHRDataset({"dataroot_gt": str(hr), "meta_info_file": str(split.train_list), "scale": 4,
                                 "crop_size": 48, "gt_size": 32, "degradation": {"kernel_size_range": [3, 5]}})
    assert train.keys == trained


# ---- train.trainable_g: fine-tune the input side only ------------------------------------------------
def test_trainable_g_trains_only_the_matching_parameters(tmp_path, one_torch_thread):
    from basicsr.archs import build_network

    start = tmp_path / "start.pth"
    torch.save({"params": with_noise(build_network(dict(TINY_SKIP)), 0.05)}, start)
    before = torch.load(start, weights_only=True)["params"]
    prefix = variant_prefix(global_skip="bicubic")
    model = make_model(tmp_path, start, {"trainable_g": r"^(conv_first|body\.0\.rdb1)\."})  # module names
    hr, lr = write_pair_folders(tmp_path / "train", ["t"], hr_size=32)
    pair = PairedLRHRDataset({"name": "t", "dataroot_gt": str(hr), "dataroot_lq": str(lr), "scale": 4, "phase": "val"})
    for it in (1, 2):
        model.feed_data({key: value[None] for key, value in pair[0].items() if key in ("lq", "gt")})
        model.optimize_parameters(it)
    after = model.net_g.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith((f"{prefix}conv_first.", f"{prefix}body.0.rdb1.")) for key in changed)
    assert f"{prefix}conv_first.weight" in changed and f"{LAST}weight" not in changed
    assert sum(p.numel() for group in model.optimizer_g.param_groups for p in group["params"]) < sum(
        p.numel() for p in model.net_g.parameters())


@pytest.mark.parametrize("pattern, message", [("(", "is not a regular expression"),
                                              ("^nothing", "matches none of the generator's parameters")])
def test_trainable_g_errors_name_the_option(tmp_path, pattern, message):
    from basicsr.archs import build_network

    start = tmp_path / "start.pth"
    torch.save({"params": build_network(dict(TINY_SKIP)).state_dict()}, start)
    with pytest.raises(ValueError, match=rf"train\.trainable_g: .*{message}"):
        make_model(tmp_path, start, {"trainable_g": pattern})
