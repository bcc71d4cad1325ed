"""Option files are validated at training start: unknown or contradictory keys are errors."""

import copy
from pathlib import Path

import pytest
import yaml
from basicsr.utils.registry import MODEL_REGISTRY

from realesrgan_ext.models.adversarial_sr_model import AdversarialSRModel
from realesrgan_ext.option_check import run_from_argv
from realesrgan_ext.option_validation import (
    OptionFileError,
    merged_class_keys,
    validate_option_file,
    validate_options,
)

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny_esrgan_x4.yml").read_text())

# BasicSR's own ESRGAN recipe (options/train/ESRGAN/train_ESRGAN_x4.yml), abridged: its keys stay valid.
BASICSR_ESRGAN = {
    "name": "ESRGAN", "model_type": "ESRGANModel", "scale": 4, "num_gpu": 1, "manual_seed": 0,
    "datasets": {
        "train": {"name": "DIV2K", "type": "PairedImageDataset", "dataroot_gt": "a", "dataroot_lq": "b",
                  "filename_tmpl": "{}", "io_backend": {"type": "disk"}, "gt_size": 128, "use_hflip": True,
                  "use_rot": True, "use_shuffle": True, "num_worker_per_gpu": 6, "batch_size_per_gpu": 16,
                  "dataset_enlarge_ratio": 1, "prefetch_mode": None},
        "val": {"name": "Set14", "type": "PairedImageDataset", "dataroot_gt": "c", "dataroot_lq": "d",
                "io_backend": {"type": "disk"}}},
    "network_g": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 23},
    "network_d": {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 64},
    "path": {"pretrain_network_g": "x.pth", "strict_load_g": True, "resume_state": None},
    "train": {
        "ema_decay": 0.999,
        "optim_g": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
        "optim_d": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
        "scheduler": {"type": "MultiStepLR", "milestones": [50000, 100000], "gamma": 0.5},
        "total_iter": 400000, "warmup_iter": -1,
        "pixel_opt": {"type": "L1Loss", "loss_weight": 1e-2, "reduction": "mean"},
        "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1}, "vgg_type": "vgg19",
                           "use_input_norm": True, "range_norm": False, "perceptual_weight": 1.0,
                           "style_weight": 0, "criterion": "l1"},
        "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0, "fake_label_val": 0.0,
                    "loss_weight": 5e-3},
        "net_d_iters": 1, "net_d_init_iters": 0},
    "val": {"val_freq": 5000, "save_img": True,
            "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": False}}},
    "logger": {"print_freq": 100, "save_checkpoint_freq": 5000, "use_tb_logger": True,
               "wandb": {"project": None, "resume_id": None}},
    "dist_params": {"backend": "nccl", "port": 29500},
}


def problems_of(opt):
    with pytest.raises(OptionFileError) as info:
        validate_options(opt, "my.yml")
    assert str(info.value).startswith("my.yml: ")
    return info.value.problems


@pytest.mark.parametrize("path", sorted((REPO / "options").glob("*.yml")) + [REPO / "tests/data/tiny_esrgan_x4.yml"],
                         ids=lambda p: p.name)
def test_shipped_option_files_are_valid(path):
    validate_option_file(path)


def test_basicsr_own_recipe_stays_valid():
    validate_options(BASICSR_ESRGAN, "basicsr.yml")


def test_misspelt_loss_key_names_the_nearest(tmp_path):
    opt = copy.deepcopy(TINY)
    opt["train"]["perceptul_opt"] = opt["train"].pop("perceptual_opt")
    path = tmp_path / "typo.yml"
    path.write_text(yaml.safe_dump(opt))
    with pytest.raises(OptionFileError) as info:
        validate_option_file(path)
    message = str(info.value)
    assert str(path) in message and "train.perceptul_opt: unknown key (did you mean 'perceptual_opt'?)" in message


@pytest.mark.parametrize(("section", "bad", "good"), [
    ("network_g", "num_blocks", "num_block"),
    ("network_d", "input_sise", "input_size"),
    ("datasets.train", "gt_szie", "gt_size"),
    ("datasets.val", "dataroot_gtt", "dataroot_gt"),
    ("train", "ema_decai", "ema_decay"),
    ("train.pixel_opt", "loss_wieght", "loss_weight"),
    ("train.perceptual_opt", "layer_weight", "layer_weights"),
    ("train.gan_opt", "loss_weights", "loss_weight"),
    ("train.optim_g", "betass", "betas"),
    ("train.scheduler", "milestone", "milestones"),
    ("val", "val_freqq", "val_freq"),
    ("logger", "print_frq", "print_freq"),
    ("path", "pretrain_network_gg", "pretrain_network_g"),
    ("", "manual_sead", "manual_seed"),
])
def test_unknown_key_anywhere_is_an_error(section, bad, good):
    opt = copy.deepcopy(TINY)
    node = opt
    for part in filter(None, section.split(".")):
        node = node[part]
    node[bad] = 1
    where = f"{section}.{bad}" if section else bad
    assert problems_of(opt) == [f"{where}: unknown key (did you mean {good!r}?)"]


def test_path_keys_follow_the_networks_present():
    """BasicSR loads ``pretrain_network_<x>`` / ``param_key_<x>`` / ``strict_load_<x>`` for each ``network_<x>``."""
    opt = copy.deepcopy(TINY)
    opt["network_g2"] = dict(opt["network_g"])
    opt["path"].update(pretrain_network_g2="x.pth", param_key_g2="params", strict_load_g2=True,
                       ignore_resume_networks=["network_g2"])
    validate_options(opt)
    opt["path"]["pretrain_network_e"] = "y.pth"
    assert problems_of(opt) == ["path.pretrain_network_e: unknown key (did you mean 'pretrain_network_g'?)"]


def test_unregistered_types_are_errors():
    opt = copy.deepcopy(TINY)
    opt["network_g"]["type"] = "RRDBGenerater"
    opt["train"]["optim_g"]["type"] = "Adamm"
    problems = problems_of(opt)
    assert problems[0].startswith("network_g.type: 'RRDBGenerater' is not registered")
    assert "(did you mean 'RRDBGenerator'?)" in problems[0]
    assert problems[1].startswith("train.optim_g.type: 'Adamm' is not a torch.optim optimizer")


def test_gan_without_discriminator_and_discriminator_without_gan_are_errors():
    opt = copy.deepcopy(TINY)
    del opt["network_d"]
    assert problems_of(opt) == ["train.gan_opt: set but network_d is missing (the GAN term would be dropped)"]
    opt = copy.deepcopy(TINY)
    opt["train"]["gan_opt"] = None
    assert any(p.startswith("network_d: set but train.gan_opt is missing") for p in problems_of(opt))


def test_the_model_itself_refuses_gan_without_discriminator(tmp_path):
    from test_adversarial_sr_model import make_model

    with pytest.raises(ValueError, match="train.gan_opt: set but network_d is missing"):
        make_model(tmp_path, with_d=False)


class DegradingModel(AdversarialSRModel):
    """A third party's model: the keys it reads are found in its source, one section is declared."""

    option_keys = {"degradation": {"blur_prob", "noise_range"}}

    def feed_data(self, data):
        self.queue_size = self.opt["train"].get("queue_size", 0)
        degradation = self.opt["degradation"]
        return degradation


def test_keys_read_by_a_model_subclass_are_found_and_its_unknown_keys_are_warnings(monkeypatch):
    """A subclass reads its additions in code (found by ast) or declares them; a third party's
    unknown key is a warning (its code ignores it), this plugin's is an error."""
    monkeypatch.setitem(MODEL_REGISTRY._obj_map, "DegradingModel", DegradingModel)
    merged = merged_class_keys(DegradingModel)
    assert merged["degradation"] == {"blur_prob", "noise_range"}
    opt = copy.deepcopy(TINY)
    opt.update(model_type="DegradingModel", degradation={"blur_prob": 0.5, "noise_rnage": [1, 30]})
    opt["train"]["queue_size"] = 16
    assert validate_options(opt, "my.yml") == [
        "my.yml: degradation.noise_rnage: unknown key (did you mean 'noise_range'?); "
        "DegradingModel does not read it (ignored)"]
    monkeypatch.setattr(DegradingModel, "__module__", "realesrgan_ext.models.degrading_model")
    assert problems_of(opt) == ["degradation.noise_rnage: unknown key (did you mean 'noise_range'?)"]
    opt["model_type"] = "AdversarialSRModel"  # the base class does not read these keys
    assert set(problems_of(opt)) >= {"degradation: unknown key", "train.queue_size: unknown key"}


def test_metric_typo_is_a_missing_argument_and_a_warning():
    """calculate_psnr (BasicSR's) swallows unknown keys in **kwargs, but needs crop_border."""
    opt = copy.deepcopy(TINY)
    opt["val"]["metrics"]["psnr"]["crop_bordr"] = opt["val"]["metrics"]["psnr"].pop("crop_border")
    with pytest.raises(OptionFileError) as info:
        validate_options(opt, "my.yml")
    assert info.value.problems == ["val.metrics.psnr: missing 'crop_border' (calculate_psnr requires it)"]
    opt["val"]["metrics"]["psnr"]["crop_border"] = 4
    assert validate_options(opt, "my.yml") == [
        "my.yml: val.metrics.psnr.crop_bordr: unknown key (did you mean 'crop_border'?); "
        "calculate_psnr does not read it (ignored)"]


def test_train_py_front_exits_with_the_problems(tmp_path):
    opt = copy.deepcopy(TINY)
    opt["network_g"]["num_blocks"] = 2
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(opt))
    with pytest.raises(SystemExit) as info:
        run_from_argv(["-opt", str(path), "--auto_resume"])
    assert "network_g.num_blocks" in str(info.value.code) and str(path) in str(info.value.code)
    run_from_argv(["-opt", str(REPO / "tests/data/tiny_esrgan_x4.yml")])


# Keys BasicSR's own models read (as in its v1.4.2 option files), by model_type and section.
BASICSR_MODEL_KEYS = [
    ("EDVRModel", "train", {"tsa_iter": 50000, "dcn_lr_mul": 1}),
    ("VideoRecurrentModel", "train", {"fix_flow": 5000, "flow_lr_mul": 0.125}),
    ("VideoRecurrentModel", "val", {"flip_seq": False, "center_frame_only": False}),
    ("VideoRecurrentGANModel", "train", {"lr_flow": 1e-5, "fix_flow": 5000}),
    ("StyleGAN2Model", "train", {"r1_reg_weight": 10, "path_batch_shrink": 2, "path_reg_weight": 2,
                                 "net_g_reg_every": 4, "net_d_reg_every": 16, "mixing_prob": 0.9}),
]


@pytest.mark.parametrize(("model_type", "section", "keys"), BASICSR_MODEL_KEYS, ids=lambda x: str(x)[:24])
def test_keys_basicsr_models_read_are_accepted(model_type, section, keys):
    opt = copy.deepcopy(BASICSR_ESRGAN)
    opt["model_type"] = model_type
    opt[section].update(keys)
    warnings = validate_options(opt, "basicsr.yml")
    assert not [w for w in warnings if any(f".{k}:" in w for k in keys)], warnings


def test_real_esrgan_flat_keys_of_basicsr_models_and_no_far_fetched_hints():
    """BasicSR's RealESRGANModel reads Real-ESRGAN's flat keys; for a model that does not read them,
    the warning offers no far-fetched name ('noise_range' is not 'is_train', 'vgg_type' is not 'type')."""
    opt = copy.deepcopy(BASICSR_ESRGAN)
    opt.update(model_type="RealESRGANModel_basicsr", noise_range=[1, 30], queue_size=180, l1_gt_usm=True, gt_size=256)
    assert validate_options(opt, "x.yml") == [  # BasicSR 1.4.2 reads use_shuffle nowhere (its sampler shuffles)
        "x.yml: datasets.train.use_shuffle: unknown key; PairedImageDataset does not read it (ignored)"]
    opt["model_type"] = "ESRGANModel"
    warnings = validate_options(opt, "x.yml")
    assert "x.yml: noise_range: unknown key; ESRGANModel does not read it (ignored)" in warnings
    opt["train"]["perceptual_opt"]["vgg_typ"] = "vgg19"
    with pytest.raises(OptionFileError) as info:  # a loss constructor would fail on it
        validate_options(opt, "x.yml")
    assert info.value.problems == ["train.perceptual_opt.vgg_typ: unknown key (did you mean 'vgg_type'?)"]
    del opt["train"]["perceptual_opt"]["vgg_typ"]
    opt["network_g"]["vgg_type"] = 1
    with pytest.raises(OptionFileError) as info:
        validate_options(opt, "x.yml")
    assert info.value.problems == ["network_g.vgg_type: unknown key"]


@pytest.mark.slow
def test_niqe_takes_crop_border_and_basicsr_validation_runs_it(tmp_path):
    """calculate_niqe(img, crop_border, ...): crop_border is accepted (and required), and BasicSR's
    own validation loop, through our model, computes it."""
    import numpy as np
    from basicsr.utils import img2tensor
    from test_adversarial_sr_model import make_model

    niqe = {"type": "calculate_niqe", "crop_border": 4, "better": "lower"}
    opt = copy.deepcopy(TINY)
    opt["val"]["metrics"] = {"niqe": niqe}
    validate_options(opt, "my.yml")
    opt["val"]["metrics"]["niqe"] = {"type": "calculate_niqe"}
    assert problems_of(opt) == ["val.metrics.niqe: missing 'crop_border' (calculate_niqe requires it)"]

    # NIQE needs 2x2 blocks of 96 px after the crop: a 50 px textured LR, bicubic skip -> 200 px output
    model = make_model(tmp_path, with_d=False, gan_opt=None, network_g={
        "type": "RRDBGenerator", "num_feat": 4, "num_block": 1, "num_grow_ch": 2, "scale": 4, "global_skip": "bicubic"})
    model.opt.update(val={"metrics": {"niqe": niqe}}, name="unit")
    model._initialize_best_metric_results("tiny")
    y, x = np.mgrid[0:50, 0:50]
    texture = 0.5 + 0.25 * np.sin(x / 1.3) * np.cos(y / 1.7) + 0.05 * np.random.default_rng(0).standard_normal((50, 50))
    lq = img2tensor(np.clip(np.stack([texture] * 3, -1), 0, 1).astype(np.float32))
    loader = type("Loader", (list,), {"dataset": type("Dataset", (), {"opt": {"name": "tiny"}})()})(
        [{"lq": lq[None], "lq_path": ["a.png"]}])
    model.nondist_validation(loader, 1, None, False)
    assert np.isfinite(model.metric_results["niqe"]) and model.metric_results["niqe"] > 0
