"""evaluate.py / realesrgan_ext.evaluation: three rows scored on tiny photos, every score checked against
a direct computation with basicsr and ST-LPIPS, broken and mismatched files, the LR sources, the
report files, and the HTML page opened in headless Chromium (skipped, saying why, without it)."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics.niqe import calculate_niqe
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicsr.utils.matlab_functions import imresize
from skimage import data

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.evaluation import EvaluationError, evaluate
from realesrgan_ext.evaluation.contestants import default_labels, resolve_labels
from realesrgan_ext.evaluation.crops import detail_window
from realesrgan_ext.evaluation.image_sets import plan_reference_set
from realesrgan_ext.evaluation.lr_sources import Bicubic, LrFolder, degradation_of
from realesrgan_ext.inference import Upscaler, load_model
from realesrgan_ext.metrics.stlpips_metric import calculate_stlpips
from realesrgan_ext.tools.bicubic_lr import make_lr_folder
from realesrgan_ext.tools.pipeline_lr import PipelineDownscaler
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# as tests/test_webui.py: headless Chromium as root in a container without network
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CROPS = {"flag": (0, 0), "face": (100, 200), "suit": (250, 150)}  # (top, left) of 80 x 96 HR crops of astronaut


def write_photos(folder: Path) -> dict[str, np.ndarray]:
    """Three 80 x 96 BGR crops of scikit-image's astronaut (with texture: flag, face, suit)."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = np.ascontiguousarray(data.astronaut()[..., ::-1])
    images = {name: photo[y: y + 80, x: x + 96] for name, (y, x) in CROPS.items()}
    for name, img in images.items():
        cv2.imwrite(str(folder / f"{name}.png"), img)
    return images


def tiny_checkpoint(path: Path, seed: int) -> Path:
    """A tiny RRDB x4 on a bicubic skip whose last layer is random too (so two seeds give two models)."""
    torch.manual_seed(seed)
    arch = {"type": "RRDBGenerator", "scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 8,
            "global_skip": "bicubic"}
    net = RRDBGenerator(**{k: v for k, v in arch.items() if k != "type"})
    torch.nn.init.normal_(net.conv_last.weight, std=0.02)
    torch.save({"params_ema": net.state_dict(), "arch": arch}, path)
    return path




def matlab_bicubic(img: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.round(imresize(img.astype(np.float32) / 255, factor) * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One evaluation of bicubic and two tiny checkpoints on three photos and a broken file, x4 bicubic LR."""
    root = tmp_path_factory.mktemp("evaluation")
    photos = write_photos(root / "hr")
    (root / "hr" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    models = [tiny_checkpoint(root / f"m{seed}.pth", seed) for seed in (1, 2)]
    logged: list[str] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = evaluate([f"first={models[0]}", str(models[1])], root / "out", hr=root / "hr", bicubic=True,
                          scale=4, backend="pytorch", progress=False, log=logged.append)
    finally:
        torch.set_num_threads(threads)
    return report, photos, models, logged, root


def test_every_score_is_the_direct_computation(run, one_torch_thread):
    report, photos, models, _, _ = run
    assert report.rows == ["bicubic", "first", "m2"]
    assert report.images("reference") == ["face", "flag", "suit"]
    upscalers = {"first": Upscaler(load_model(models[0]), device="cpu"),
                 "m2": Upscaler(load_model(models[1]), device="cpu")}
    for score in report.scores:
        hr = photos[score.image]
        lr = matlab_bicubic(hr, 1 / 4)
        if score.row == "bicubic":
            out = matlab_bicubic(lr, 4)
        else:
            out = upscalers[score.row].upscale(lr[:, :, ::-1].copy())[:, :, ::-1]
        out = np.ascontiguousarray(out)
        assert score.values["psnr_y"] == pytest.approx(calculate_psnr(out, hr, 4, test_y_channel=True), rel=1e-9)
        assert score.values["ssim_y"] == pytest.approx(calculate_ssim(out, hr, 4, test_y_channel=True), rel=1e-9)
        if score.image == "face":  # ST-LPIPS is the slow one: one image per row
            assert score.values["stlpips"] == pytest.approx(calculate_stlpips(out, hr, crop_border=4), rel=1e-6)
        assert score.seconds > 0
    means = report.means()
    for row in report.rows:
        psnrs = [s.values["psnr_y"] for s in report.scores if s.row == row]
        assert means[row]["psnr_y"] == pytest.approx(sum(psnrs) / 3) and means[row]["images"] == 3
    # the two models differ, and beats() follows each metric's direction
    assert means["first"]["psnr_y"] != means["m2"]["psnr_y"]
    a, b = ("first", "m2") if means["first"]["stlpips"] < means["m2"]["stlpips"] else ("m2", "first")
    assert report.beats(a, b, ("stlpips",)) and not report.beats(b, a, ("stlpips",))
    assert report.best("stlpips") == a
    with pytest.raises(KeyError, match="rows: bicubic, first, m2"):
        report.beats("x4plus", "bicubic")


def test_broken_file_reported_while_the_rest_are_scored(run):
    report, _, _, logged, root = run
    broken = str(root / "hr" / "broken.png")
    assert [path for path, _ in report.problems] == [broken]
    assert any(broken in line and "not a readable PNG" in line for line in logged)
    assert len(report.scores) == 3 * 3
    assert broken in report.files["markdown"].read_text() and broken in report.files["html"].read_text()


def test_report_files_hold_the_scores(run):
    report, _, _, _, root = run
    rows = list(csv.DictReader(report.files["csv"].open()))
    assert [(r["image"], r["model"]) for r in rows] == [(s.image, s.row) for s in report.scores]
    assert float(rows[0]["psnr_y"]) == report.scores[0].values["psnr_y"] and "niqe" not in rows[0]
    means = {r["model"]: r for r in csv.DictReader(report.files["means_csv"].open())}
    assert float(means["m2"]["stlpips"]) == pytest.approx(report.means()["m2"]["stlpips"])
    md = report.files["markdown"].read_text()
    best = report.best("psnr_y")
    assert f"| {best} | **{report.means()[best]['psnr_y']:.2f}** |" in md
    assert md.count("](crops/") == 3 and all((root / "out" / f"crops/{i:03d}.png").is_file() for i in range(3))
    grid = cv2.imread(str(report.files["grid"]))
    assert grid.shape[0] > 3 * 80 and grid.shape[1] > 4 * 96  # 3 images x (HR, bicubic, 2 models)
    assert sorted(p.name for p in (root / "out" / "lr").iterdir()) == ["face.png", "flag.png", "suit.png"]
    assert not list((root / "out").rglob(".*partial"))
    page = report.files["html"].read_text()
    assert page.count("src='data:image/png;base64,") == 3 and "http" not in page  # self-contained


def test_only_the_first_grids_are_kept_in_memory_and_stale_crops_go(tmp_path, monkeypatch, one_torch_thread):
    from realesrgan_ext.evaluation import crops

    write_photos(tmp_path / "hr")
    stale = tmp_path / "out" / "crops" / "007.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an earlier run")
    monkeypatch.setattr(crops, "MAX_GRID_ROWS", 2)
    report = evaluate([], tmp_path / "out", hr=tmp_path / "hr", bicubic=True, scale=4, progress=False)
    assert sorted(p.name for p in stale.parent.iterdir()) == ["000.png", "001.png", "002.png"]
    page = report.files["html"].read_text()
    assert page.count("src='data:image/png") == 2 and "all 3 are in the crops/ folder" in page
    assert cv2.imread(str(report.files["grid"])).shape[0] < 2 * 300  # two rows of 80 px crops at 2x, titled


def test_lr_folder_pairs_by_name_and_a_wrong_scale_is_an_error(tmp_path, one_torch_thread):
    photos = write_photos(tmp_path / "hr")
    (tmp_path / "lr").mkdir()
    for name, img in photos.items():
        cv2.imwrite(str(tmp_path / "lr" / f"{name}.jpg"), cv2.resize(img, (24, 20), interpolation=cv2.INTER_AREA))
    image_set, scale = plan_reference_set(tmp_path / "hr", LrFolder(tmp_path / "lr"), None)
    assert scale == 4 and [i.lr_path.name for i in image_set.images] == ["face.jpg", "flag.jpg", "suit.jpg"]
    with pytest.raises(EvaluationError, match=r"(?s)3 LR/HR pair\(s\) do not match the scale 2.*face.jpg is 24x20"):
        plan_reference_set(tmp_path / "hr", LrFolder(tmp_path / "lr"), 2)
    (tmp_path / "lr" / "flag.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")  # read from the LR folder, broken
    report = evaluate([], tmp_path / "out", hr=tmp_path / "hr", lr=tmp_path / "lr", progress=False, log=lambda _: None)
    assert [(path, reason[:25]) for path, reason in report.problems] == [
        (str(tmp_path / "lr" / "flag.jpg"), "not a readable JPEG (corr")]
    face_lr = cv2.imread(str(tmp_path / "lr" / "face.jpg"))
    face = next(s for s in report.scores if s.image == "face")
    assert face.values["psnr_y"] == pytest.approx(calculate_psnr(matlab_bicubic(face_lr, 4), photos["face"], 4,
                                                                 test_y_channel=True))
    assert report.images("reference") == ["face", "suit"] and not (tmp_path / "out" / "lr").exists()
    (tmp_path / "lr" / "suit.jpg").unlink()
    with pytest.raises(EvaluationError, match="no LR image for 1 HR image.*suit"):
        plan_reference_set(tmp_path / "hr", LrFolder(tmp_path / "lr"), 4)
    with pytest.raises(EvaluationError, match="report folder .*/hr/eval is inside the input folder"):
        evaluate([], tmp_path / "hr" / "eval", hr=tmp_path / "hr", bicubic=True, scale=4)
    with pytest.raises(EvaluationError, match="give --hr too"):
        evaluate([], tmp_path / "out", lr=tmp_path / "lr", real=tmp_path / "lr")
    with pytest.raises(EvaluationError, match="exactly one LR source"):
        evaluate([], tmp_path / "out", hr=tmp_path / "hr", lr=tmp_path / "lr", bicubic=True)
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    cv2.imwrite(str(tiny / "small.png"), photos["face"][:20, :20])
    image_set, _ = plan_reference_set(tiny, Bicubic(), 4)
    assert not image_set.images and "too small to score at x4" in image_set.problems[0][1]
    image_set, _ = plan_reference_set(tmp_path / "hr", Bicubic(), 4, max_pixels=80 * 96 - 1)
    assert len(image_set.problems) == 3 and "larger than the 0.0 MP bound" in image_set.problems[0][1]


def test_degraded_lr_is_seeded_and_a_bad_range_names_the_file(tmp_path, one_torch_thread):
    write_photos(tmp_path / "hr")
    damage = tmp_path / "damage.yml"
    damage.write_text("scale: 4\ndegradation:\n  first: {jpeg_range: [5, 25], noise_range: [5, 10]}\n")
    lrs = []
    for out in ("a", "b"):
        evaluate([], tmp_path / out, hr=tmp_path / "hr", degradation=damage, progress=False, log=lambda _: None)
        lrs.append([(tmp_path / out / "lr" / f"{name}.png").read_bytes() for name in CROPS])
    assert lrs[0] == lrs[1]
    evaluate([], tmp_path / "c", hr=tmp_path / "hr", degradation=damage, seed=1, progress=False)
    assert (tmp_path / "c" / "lr" / "face.png").read_bytes() != lrs[0][0]
    # the same LR as scripts/make_lr.py --degradation with that seed (seeded by the HR's relative path)
    make_lr_folder(tmp_path / "hr", tmp_path / "made", 4, progress=False,
                   downscale=PipelineDownscaler(degradation_of(damage)[0], seed=1))
    made, ours = (cv2.imread(str(folder / "face.png")) for folder in (tmp_path / "made", tmp_path / "c" / "lr"))
    assert np.array_equal(made, ours)
    damage.write_text("scale: 4\nname: no damage described\n")
    with pytest.raises(EvaluationError, match=f"{damage}: no degradation to make the LR with"):
        evaluate([], tmp_path / "d", hr=tmp_path / "hr", degradation=damage)
    damage.write_text("scale: 4\ndegradation:\n  first: {jpeg_range: [25, 5]}\n")
    with pytest.raises(EvaluationError, match=rf"{damage}: degradation.first.jpeg_range"):
        evaluate([], tmp_path / "d", hr=tmp_path / "hr", degradation=damage)


def test_real_photos_are_scored_by_niqe(tmp_path, one_torch_thread):
    photo = np.ascontiguousarray(data.astronaut()[..., ::-1])
    (tmp_path / "real").mkdir()
    cv2.imwrite(str(tmp_path / "real" / "big.png"), cv2.resize(photo, (64, 56), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(tmp_path / "real" / "small.png"), photo[:20, :20])  # 80 x 80 at x4: too small for NIQE
    report = evaluate([], tmp_path / "out", real=tmp_path / "real", scale=4, progress=False)
    big = next(s for s in report.scores if s.image == "big")
    lr = cv2.imread(str(tmp_path / "real" / "big.png"))
    assert big.values["niqe"] == pytest.approx(calculate_niqe(matlab_bicubic(lr, 4), 0))
    assert math.isnan(next(s for s in report.scores if s.image == "small").values["niqe"])
    assert report.means("real")["bicubic"]["niqe"] == pytest.approx(big.values["niqe"])
    assert "No-reference" in report.files["html"].read_text()


def test_labels_are_short_unique_and_checked():
    assert default_labels(["realesrgan-x4plus", "runs/a/models/net_g_best.pth", "runs/b/models/net_g_best.pth"]) == [
        "realesrgan-x4plus", "a/models/net_g_best", "b/models/net_g_best"]
    assert resolve_labels(["tuned=x.pth", "y.pth"]) == [("tuned", "x.pth"), ("y", "y.pth")]
    for bad in (["bicubic=x.pth"], ["a=x.pth", "a=y.pth"]):
        with pytest.raises(EvaluationError, match="LABEL=MODEL"):
            resolve_labels(bad)


def test_crop_goes_where_the_detail_is():
    img = np.full((100, 200, 3), 128, np.uint8)
    img[40:80, 150:190] = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    top, left, h, w = detail_window(img, 32)
    assert (h, w) == (32, 32) and 40 - 2 <= top <= 48 + 2 and 150 - 2 <= left <= 158 + 2


def test_cli_exit_status_and_messages(tmp_path, capsys, one_torch_thread):
    script = load_script("evaluate")
    write_photos(tmp_path / "hr")
    assert script.main(["--hr", str(tmp_path / "hr"), "-o", str(tmp_path / "out")]) == 2
    assert "exactly one LR source" in capsys.readouterr().err
    assert script.main(["-m", str(tmp_path / "missing.pth"), "--hr", str(tmp_path / "hr"), "--bicubic",
                        "-o", str(tmp_path / "out")]) == 2
    assert "missing.pth" in capsys.readouterr().err
    (tmp_path / "hr" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert script.main(["--hr", str(tmp_path / "hr"), "--bicubic", "--scale", "4", "-o", str(tmp_path / "out"),
                        "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "| bicubic |" in out and f"report: {tmp_path / 'out' / 'report.html'}" in out
    assert f"{tmp_path / 'hr' / 'cut.jpg'}:" in err
    common = ["--hr", str(tmp_path / "hr"), "--bicubic", "--scale", "4", "-o", str(tmp_path / "out"), "--quiet"]
    assert script.main([*common, "--require-better", "bicubic", "bicubic", "--require-metrics", "psnr_y"]) == 3
    assert "bicubic not better than bicubic on PSNR-Y ↑: " in capsys.readouterr().out
    for bad, message in ((["tuned", "bicubic"], "tuned is not a row; rows: bicubic"),
                         (["bicubic", "bicubic", "--require-metrics", "niqe"], "niqe needs --real photos")):
        assert script.main([*common, "--require-better", *bad]) == 2
        assert message in capsys.readouterr().err


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (bash scripts/install.sh --dev)"
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} not found (apt-get install chromium; .ci/run does it where apt-get works as root)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))
def test_html_report_renders_in_headless_chromium(run):
    from playwright.sync_api import sync_playwright

    report = run[0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(report.files["html"].resolve().as_uri())
            rows = page.locator("table.means.reference tbody tr")
            assert rows.count() == 3 and rows.nth(1).locator("td").first.inner_text() == "first"
            assert page.locator("table.per-image tbody tr").count() == 9
            widths = page.eval_on_selector_all("img.grid", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
            assert len(widths) == 3 and all(w > 4 * 96 for w in widths)
            assert "broken.png" in page.inner_text(".problems")
        finally:
            browser.close()
