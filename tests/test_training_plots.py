"""Training plots read what a real BasicSR run wrote: events, text log, option file, SR images."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from basicsr.metrics import calculate_psnr

from realesrgan_ext.tools import training_plots as tp
from realesrgan_ext.tools.training_plot_images import experiment_val_sets, read_uint8, sr_checkpoints
from realesrgan_ext.tools.training_plot_logs import (
    Run,
    TrainingScalars,
    merge_runs,
    parse_train_log,
    read_tensorboard,
    read_train_logs,
    read_training_scalars,
    split_tags,
)

NAME = "tiny_plots"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_pairs(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (folder / "hr").mkdir(parents=True)
    (folder / "lr").mkdir()
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    for i in range(count):
        f = rng.uniform(2, 6, 3)
        hr = np.stack([np.sin(f[0] * xx + i), np.cos(f[1] * yy), np.sin(f[2] * (xx + yy))], -1) * 0.5 + 0.5
        hr = np.round(hr * 255).astype(np.uint8)
        cv2.imwrite(str(folder / "hr" / f"im{i}.png"), hr)
        cv2.imwrite(str(folder / "lr" / f"im{i}.png"), cv2.resize(hr, (8, 8), interpolation=cv2.INTER_AREA))


def _options(root: Path) -> dict:
    def dataset(name: str, split: str) -> dict:
        return {"name": name, "type": "PairedImageDataset", "io_backend": {"type": "disk"},
                "dataroot_gt": f"data/{split}/hr", "dataroot_lq": f"data/{split}/lr"}  # relative to root

    train = dataset("train", "train") | {"gt_size": 16, "use_hflip": True, "use_rot": False,
                                          "num_worker_per_gpu": 0, "batch_size_per_gpu": 2,
                                          "dataset_enlarge_ratio": 1}
    return {
        "name": NAME, "model_type": "SRModel", "scale": 4, "num_gpu": 0, "manual_seed": 0,
        "datasets": {"train": train, "val": dataset("tinyval", "val")},
        "network_g": {"type": "MSRResNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1,
                      "upscale": 4},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"optim_g": {"type": "Adam", "lr": 2e-3}, "total_iter": 6, "warmup_iter": -1,
                  "scheduler": {"type": "MultiStepLR", "milestones": [100], "gamma": 0.5},
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        "val": {"val_freq": 3, "save_img": True,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": True},
                            "ssim": {"type": "calculate_ssim", "crop_border": 4, "test_y_channel": True}}},
        "logger": {"print_freq": 2, "save_checkpoint_freq": 100, "use_tb_logger": True},
        "dist_params": {"backend": "gloo", "port": 29500},
    }


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory) -> Path:
    """experiments/NAME of a real 6-iteration basicsr run (SRModel + MSRResNet on 32x32 pairs)."""
    root = tmp_path_factory.mktemp("run")
    _write_pairs(root / "data" / "train", 4, seed=1)
    _write_pairs(root / "data" / "val", 2, seed=2)
    (root / "opt.yml").write_text(yaml.safe_dump(_options(root), sort_keys=False))
    code = ("import realesrgan_ext; realesrgan_ext.register(); from basicsr.train import train_pipeline; "
            f"train_pipeline({str(root)!r})")
    proc = subprocess.run([sys.executable, "-c", code, "-opt", "opt.yml"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "experiments" / NAME


@pytest.fixture(scope="module")
def plotted(exp_dir):
    return tp.plot_training(exp_dir)


def _line_titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_plot_training_writes_three_readable_pngs(exp_dir, plotted):
    assert plotted.skipped == {}
    assert set(plotted.paths) == {"losses", "validation", "samples"}
    for key, path in plotted.paths.items():
        assert path == exp_dir / "plots" / f"{key}.png"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        assert cv2.imread(str(path)) is not None


def test_losses_figure_has_generator_panel_with_raw_and_smoothed_lines(plotted):
    fig = plotted.figures["losses"]
    assert _line_titles(fig) == ["Generator loss terms"]  # SRModel logs no discriminator terms
    ax = fig.axes[0]
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel().startswith("loss")
    raw, smooth = ax.get_lines()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["l_pix"]
    assert list(raw.get_xdata()) == [2, 4, 6]
    assert raw.get_alpha() == 0.25 and smooth.get_alpha() is None  # raw faint behind the smoothed line
    assert raw.get_color() == smooth.get_color()
    assert "EMA smoothing 0.9" in fig.get_suptitle()


def test_validation_figure_shows_metrics_and_bicubic_baseline(plotted):
    fig = plotted.figures["validation"]
    assert _line_titles(fig) == ["Validation PSNR", "Validation SSIM"]
    psnr_ax, ssim_ax = fig.axes
    assert psnr_ax.get_ylabel() == "PSNR (dB)" and psnr_ax.get_xlabel() == "iteration"
    curve, baseline = psnr_ax.get_lines()
    assert list(curve.get_xdata()) == [3, 6, 7]  # val_freq 3, and the validation after the loop
    assert baseline.get_linestyle() == "--"
    assert baseline.get_ydata()[0] == pytest.approx(plotted.baseline["tinyval"]["psnr"])
    assert len(ssim_ax.get_lines()) == 2


def test_samples_grid_has_lr_bicubic_checkpoints_hr_per_image(plotted):
    fig = plotted.figures["samples"]
    titles = _line_titles(fig)
    assert len(titles) == 2 * 6  # 2 val images x (LR, bicubic, SR@3, SR@6, SR@7, HR)
    first_row = titles[:6]
    assert first_row[0] == "LR (nearest ×4)" and first_row[-1] == "HR (ground truth)"
    assert first_row[1].startswith("bicubic\n") and first_row[1].endswith(" dB")
    assert [t.split("\n")[0] for t in first_row[2:5]] == ["SR @ iter 3", "SR @ iter 6", "SR @ iter 7"]
    assert fig.axes[0].get_ylabel().startswith("tinyval/im0\n32×32 px")


def test_tensorboard_values_equal_the_text_log(exp_dir):
    scalars = read_training_scalars(exp_dir)
    assert scalars.source.startswith("tensorboard")
    log_tags, files = read_train_logs(exp_dir)
    assert len(files) == 1
    losses, metrics = split_tags(log_tags)
    assert set(scalars.losses) == set(losses) == {"l_pix"}
    for key, series in scalars.losses.items():
        assert list(series) == list(losses[key])
        assert list(series.values()) == pytest.approx(list(losses[key].values()), rel=1e-4)
    assert set(metrics["tinyval"]) == {"psnr", "ssim"}
    for metric, series in scalars.metrics["tinyval"].items():
        assert list(series) == list(metrics["tinyval"][metric]) == [3, 6, 7]
        assert list(series.values()) == pytest.approx(list(metrics["tinyval"][metric].values()), abs=1e-4)


def test_saved_sr_images_reproduce_the_logged_psnr(exp_dir):
    """Our image pipeline (HR cut, uint8, option-file crop_border/Y) is the one basicsr validated with."""
    (val_set,) = experiment_val_sets(exp_dir)
    logged = read_training_scalars(exp_dir).metrics["tinyval"]["psnr"]
    opt = val_set.metric_opts["psnr"]
    for it, value in logged.items():
        scores = [calculate_psnr(read_uint8(sr_checkpoints(exp_dir, img.name)[it]), read_uint8(img.hr_path),
                                 opt["crop_border"], test_y_channel=opt["test_y_channel"]) for img in val_set.images]
        assert np.mean(scores) == pytest.approx(value, abs=1e-3)


def test_bicubic_baseline_and_summary(exp_dir, plotted):
    (val_set,) = experiment_val_sets(exp_dir)
    assert [img.name for img in val_set.images] == ["im0", "im1"]
    expected = []
    for img in val_set.images:
        lr = cv2.imread(str(img.lr_path)).astype(np.float32) / 255
        bic = np.round(np.clip(cv2.resize(lr, (32, 32), interpolation=cv2.INTER_CUBIC), 0, 1) * 255)
        expected.append(calculate_psnr(bic.astype(np.uint8), cv2.imread(str(img.hr_path)), 4, test_y_channel=True))
    assert plotted.baseline["tinyval"]["psnr"] == pytest.approx(np.mean(expected))
    summary = tp.psnr_summary(exp_dir)
    logged = read_training_scalars(exp_dir).metrics["tinyval"]["psnr"]
    assert summary == plotted.summary
    assert (summary.val_set, summary.final_iter, summary.final_psnr) == ("tinyval", 7, logged[7])
    assert summary.best_psnr == max(logged.values())
    assert summary.bicubic_psnr == pytest.approx(np.mean(expected))
    assert "dB vs bicubic" in str(summary)


def test_without_events_the_text_log_is_read(exp_dir, tmp_path):
    copy = tmp_path / "experiments" / NAME  # a root without tb_logger/
    shutil.copytree(exp_dir, copy, ignore=shutil.ignore_patterns("plots"))
    shutil.copytree(exp_dir.parent.parent / "data", tmp_path / "data")  # dataroots are relative to the root
    scalars = read_training_scalars(copy)
    assert scalars.source.startswith("text log")
    assert list(scalars.metrics["tinyval"]["psnr"]) == [3, 6, 7]
    result = tp.plot_training(copy, out_dir=tmp_path / "out", smoothing=0.5)
    assert set(result.paths) == {"losses", "validation", "samples"}
    assert all(p.parent == tmp_path / "out" for p in result.paths.values())


def test_cli_prints_model_vs_bicubic(exp_dir, tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    try:
        import plot_training
    finally:
        sys.path.pop(0)
    assert plot_training.main([str(exp_dir), "--out", str(tmp_path), "--smoothing", "0.6", "--rows", "1"]) == 0
    out = capsys.readouterr().out
    assert "bicubic on tinyval: psnr " in out and "dB vs bicubic" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.png", "samples.png", "validation.png"]


def test_missing_inputs_are_reported_not_drawn(tmp_path):
    exp = tmp_path / "experiments" / "empty"
    exp.mkdir(parents=True)
    result = tp.plot_training(exp)
    assert result.paths == {} and set(result.skipped) == {"losses", "validation", "samples"}
    assert "save_img" in result.skipped["samples"]
    with pytest.raises(FileNotFoundError):
        tp.plot_training(tmp_path / "nope")


# ---------------------------------------------------------------- text log fixtures (GAN model)

HEADER = textwrap.dedent("""\
    2026-01-01 10:00:00,000 INFO:
      name: gan_demo
      datasets:[
        val:[
          name: Set5
        ]
      ]
      val:[
        val_freq: 1000.0
        save_img: True
      ]
    2026-01-01 10:00:01,000 INFO: Training statistics:
    \tNumber of train images: 800
    \tRequire iter number per epoch: 400
    \tTotal epochs: 8; iters: 3000.
    """)


def _train_line(it: int, **values: float) -> str:
    pairs = " ".join(f"{k}: {v:.4e}" for k, v in values.items())
    return (f"2026-01-01 10:00:02,000 INFO: [gan_d..][epoch:  1, iter:{it:8,d}, lr:(1.000e-04,1.000e-04,)] "
            f"[eta: 0:01:00, time (data): 0.500 (0.010)] {pairs} \n")


def _val_block(val_set: str, psnr: float, best: float, best_iter: int) -> str:
    return (f"2026-01-01 10:00:03,000 INFO: Validation {val_set}\n"
            f"\t # psnr: {psnr:.4f}\tBest: {best:.4f} @ {best_iter} iter\n"
            f"\t # ssim: {psnr / 100:.4f}\tBest: {best / 100:.4f} @ {best_iter} iter\n\n")


def _gan_terms(i: int) -> dict[str, float]:
    return {"l_g_pix": 0.02 / i, "l_g_percep": 1.5 - 0.1 * i, "l_g_gan": 0.08 + 0.01 * i, "l_g_total": 1.6,
            "l_d_real": 0.6, "out_d_real": 1.0 + 0.1 * i, "l_d_fake": 0.5, "out_d_fake": -1.0 - 0.1 * i}


GAN_LOG = (HEADER + "2026-01-01 10:00:02,000 INFO: Start training from epoch: 0, iter: 0\n"
           + _train_line(500, **_gan_terms(1))
           + _train_line(1000, **_gan_terms(2))
           + _val_block("Set5", 28.0, 28.0, 1000) + _val_block("Set14", 25.0, 25.0, 1000)
           + _train_line(1500, **_gan_terms(3))
           + _train_line(2000, **_gan_terms(4))
           + _val_block("Set5", 27.0, 28.0, 1000) + _val_block("Set14", 26.0, 26.0, 2000)
           + _train_line(2500, **_gan_terms(5))
           + _val_block("Set5", 27.5, 28.0, 1000) + _val_block("Set14", 25.5, 26.0, 2000)  # at 3000, unprinted
           + "2026-01-01 10:00:04,000 INFO: End of training. Time consumed: 0:10:00\n"
           + "2026-01-01 10:00:04,000 INFO: Save the latest model.\n"
           + _val_block("Set5", 27.5, 28.0, 1000) + _val_block("Set14", 25.5, 26.0, 2000))


def test_parse_gan_log_infers_validation_iterations():
    run = parse_train_log(GAN_LOG)
    losses, metrics = split_tags(run.tags)
    assert run.start == 1
    assert set(run.tags) >= {"losses/l_g_pix", "losses/l_d_real", "out_d_real", "metrics/Set14/psnr"}
    assert list(losses["l_g_percep"].items()) == [(500, 1.4), (1000, 1.3), (1500, 1.2), (2000, 1.1), (2500, 1.0)]
    # 1000 and 2000 from Best @, 3000 from val_freq, 3002 = the loop's end (3000 % 400 != 0)
    assert metrics["Set5"]["psnr"] == {1000: 28.0, 2000: 27.0, 3000: 27.5, 3002: 27.5}
    assert metrics["Set14"]["psnr"] == {1000: 25.0, 2000: 26.0, 3000: 25.5, 3002: 25.5}
    assert metrics["Set14"]["ssim"][2000] == 0.26


def test_gan_losses_figure_has_g_d_and_d_output_panels(tmp_path):
    losses, metrics = split_tags(parse_train_log(GAN_LOG).tags)
    scalars = TrainingScalars(losses, metrics, "fixture")
    groups = tp.group_losses(scalars.losses)
    assert groups["G"].keys() == {"l_g_pix", "l_g_percep", "l_g_gan", "l_g_total"}
    assert groups["D"].keys() == {"l_d_real", "l_d_fake"}
    assert groups["D_out"].keys() == {"out_d_real", "out_d_fake"}
    fig = tp.plot_losses(scalars, smoothing=0.6, title="gan_demo")
    assert _line_titles(fig) == ["Generator loss terms", "Discriminator loss terms",
                                 "Mean discriminator output on real vs fake"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [8, 4, 4]  # raw + smoothed per key
    assert fig.axes[0].get_yscale() == "log"  # l_g_pix and l_g_percep are decades apart
    assert fig.axes[2].get_ylabel() == "mean D output (logit)"
    assert all(ax.get_xlabel() == "iteration" for ax in fig.axes[-1:])
    val = tp.plot_validation(scalars, {"Set5": {"psnr": 26.0}})
    assert [len(ax.get_lines()) for ax in val.axes] == [3, 2]  # 2 sets (+1 baseline), 2 sets
    fig.savefig(tmp_path / "gan_losses.png")
    val.savefig(tmp_path / "gan_val.png")


def test_resumed_text_logs_merge(tmp_path):
    exp = tmp_path / "experiments" / "res"
    exp.mkdir(parents=True)
    head = "2026-01-01 10:00:00,000 INFO:\n  val:[\n    val_freq: 200\n  ]\n"
    first = (head + "2026-01-01 10:00:00,000 INFO: Start training from epoch: 0, iter: 0\n"
             + _train_line(100, l_pix=0.1) + _train_line(200, l_pix=0.2)
             + _val_block("val", 20.0, 20.0, 200) + _train_line(300, l_pix=0.3))
    second = (head + "2026-01-02 10:00:00,000 INFO: Start training from epoch: 0, iter: 200\n"
              + "".join(_train_line(it, l_pix=it / 2000) for it in (300, 400))
              + _val_block("val", 22.0, 22.0, 400))
    (exp / "train_res_20260101_100000.log").write_text(first)
    (exp / "train_res_20260102_100000.log").write_text(second)
    tags, files = read_train_logs(exp)
    assert [f.name for f in files] == ["train_res_20260101_100000.log", "train_res_20260102_100000.log"]
    assert tags["losses/l_pix"] == {100: 0.1, 200: 0.2, 300: 0.15, 400: 0.2}
    assert tags["metrics/val/psnr"] == {200: 20.0, 400: 22.0}


def test_event_files_of_a_resumed_run_merge(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "tb_logger" / "res"
    for start, stop, scale in ((0, 60, 1.0), (30, 80, 2.0)):  # second run resumed from iteration 30
        writer = SummaryWriter(log_dir=str(tb))
        for it in range(start + 10, stop + 1, 10):
            writer.add_scalar("losses/l_g_pix", scale * it, it)
            writer.add_scalar("out_d_real", -scale, it)
            if it % 20 == 0:
                writer.add_scalar("metrics/val/psnr", 20 + scale, it)
        writer.close()
    assert len(list(tb.glob("events.out.tfevents.*"))) == 2
    tags = read_tensorboard(tb)
    assert tags["losses/l_g_pix"] == {10: 10, 20: 20, 30: 30, 40: 80, 50: 100, 60: 120, 70: 140, 80: 160}
    assert tags["metrics/val/psnr"] == {20: 21, 40: 22, 60: 22, 80: 22}
    losses, metrics = split_tags(tags)
    assert set(losses) == {"l_g_pix", "out_d_real"} and metrics["val"]["psnr"][20] == 21


def test_merge_runs_later_run_wins_from_its_start():
    merged = merge_runs([Run({"a": {1: 1.0, 2: 2.0, 3: 3.0}, "b": {3: 0.0}}, 1), Run({"a": {2: 5.0}}, 2)])
    assert merged == {"a": {1: 1.0, 2: 5.0}}


def test_ema_smooth_is_tensorboards_debiased_ema():
    assert list(tp.ema_smooth(np.array([1.0, 0.0]), 0.5)) == pytest.approx([1.0, 0.25 / 0.75])
    assert list(tp.ema_smooth(np.array([3.0, 3.0, 3.0]), 0.9)) == [3.0, 3.0, 3.0]
    out = tp.ema_smooth(np.array([1.0, np.nan, 1.0, 0.0]), 0.0)
    assert np.isnan(out[1]) and list(out[[0, 2, 3]]) == [1.0, 1.0, 0.0]
