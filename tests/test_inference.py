"""Inference: checkpoint loading (and refusing unsafe pickles), seam-free tiling, image formats,
the folder runner and the command line. Tiny RRDBs (num_feat 8, num_block 1) and small images."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from safetensors.torch import save_file
from torch import nn

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference import (
    DEFAULT_TILE_PAD,
    LoadedModel,
    ModelLoadError,
    OutputConflictError,
    UnsafeCheckpointError,
    Upscaler,
    load_image,
    load_model,
    plan_jobs,
    run_jobs,
    save_image,
)
from realesrgan_ext.inference.image_io import apply_orientation
from tests.helpers import load_script

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 8}
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "inference.py"


def tiny_rrdb(scale: int = 4, seed: int = 0, **kw) -> RRDBGenerator:
    torch.manual_seed(seed)
    return RRDBGenerator(scale=scale, **{**TINY, **kw}).eval()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo (skimage's astronaut), 64x64 RGB uint8."""
    skdata = pytest.importorskip("skimage.data")
    return cv2.resize(skdata.astronaut(), (64, 64), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photo_strip() -> np.ndarray:
    """A 32x160 band of the astronaut: wide enough that 40 px tiles lack context with pad 48."""
    skdata = pytest.importorskip("skimage.data")
    return cv2.resize(skdata.astronaut(), (160, 160), interpolation=cv2.INTER_AREA)[64:96]


def nearest_model(scale: int = 4, size_multiple: int = 1) -> LoadedModel:
    """A pointwise 'network' (nearest upsampling): fast, and tiling must reproduce it exactly."""
    return LoadedModel(module=nn.Upsample(scale_factor=scale, mode="nearest"), name="nearest", scale=scale,
                       in_channels=3, out_channels=3, size_multiple=size_multiple)


# -- model loading -----------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [4, 2, 1])
@pytest.mark.parametrize("layout", ["params_ema", "params", "bare", "module", "safetensors"])
def test_loader_infers_rrdb_settings(tmp_path, scale, layout):
    net = tiny_rrdb(scale, num_block=2)
    sd = net.state_dict()
    if layout == "safetensors":
        path = tmp_path / "net.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        ckpt = {"params_ema": sd, "params": sd} if layout == "params_ema" else \
            {"params": sd} if layout == "params" else \
            {f"module.{k}": v for k, v in sd.items()} if layout == "module" else sd
        path = tmp_path / "net.pth"
        torch.save(ckpt, path)
    model = load_model(path)
    assert (model.name, model.scale, model.in_channels, model.out_channels) == ("RRDB", scale, 3, 3)
    assert model.size_multiple == {4: 1, 2: 2, 1: 4}[scale]
    assert model.settings == {"num_in_ch": 3, "num_out_ch": 3, "scale": scale, "num_feat": 8, "num_block": 2,
                              "num_grow_ch": 8, "upsampler": "nearest"}
    loaded = model.module.state_dict()
    assert loaded.keys() == sd.keys() and all(torch.equal(loaded[k], v) for k, v in sd.items())


def test_loader_prefers_params_ema_and_reads_x8_and_esrgan_2019_names():
    ema, raw = tiny_rrdb(4, seed=1), tiny_rrdb(4, seed=2)
    model = load_model({"params": raw.state_dict(), "params_ema": ema.state_dict(), "iter": 5})
    for key, value in ema.state_dict().items():
        assert torch.equal(model.module.state_dict()[key], value)
    x8 = load_model(tiny_rrdb(8).state_dict())
    assert x8.scale == 8 and x8.settings["scale"] == 8
    shuffle = load_model(tiny_rrdb(4, upsampler="pixelshuffle").state_dict())
    assert shuffle.settings["upsampler"] == "pixelshuffle"
    renames = [("conv_body", "trunk_conv"), (".rdb", ".RDB"), ("conv_up", "upconv"), ("conv_hr", "HRconv")]
    old = {}
    for key, value in ema.state_dict().items():
        for new, legacy in renames:
            key = key.replace(new, legacy)
        old[f"RRDB_trunk.{key[5:]}" if key.startswith("body.") else key] = value
    assert load_model(old).settings == model.settings
    explicit = load_model(ema.state_dict(), settings={"num_block": 1})
    assert explicit.settings["num_block"] == 1
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_model(ema.state_dict(), settings={"num_feat": 16})


def test_recorded_arch_options_are_used(tmp_path):
    """Options the keys cannot show (global_skip) come from the checkpoint's 'arch' record;
    other registered architectures are built from it too."""
    net = tiny_rrdb(2, global_skip="bicubic")
    path = tmp_path / "skip.pth"
    torch.save({"params_ema": net.state_dict(), "arch": {"type": "RRDBGenerator", "scale": 2,
                                                         "global_skip": "bicubic", **TINY}}, path)
    model = load_model(path)
    assert model.module.global_skip == "bicubic" and model.scale == 2 and model.size_multiple == 2
    srresnet = pytest.importorskip("realesrgan_ext.archs.srresnet_arch")
    sr = srresnet.SRResNetGenerator(scale=2, num_feat=8, num_block=1)
    loaded = load_model({"params": sr.state_dict(),
                         "arch": {"type": "SRResNetGenerator", "scale": 2, "num_feat": 8, "num_block": 1}})
    assert (loaded.name, loaded.scale, loaded.in_channels) == ("SRResNetGenerator", 2, 3)
    with pytest.raises(ModelLoadError, match="may only ask for"):
        load_model({"params": sr.state_dict(), "arch": {"type": "NoSuchNet"}})


def test_spandrel_fallback_for_a_non_rrdb_net(photo):
    """spandrel 0.4.2 ships no EDSR; Real-ESRGAN's SRVGG 'Compact' net is a tiny non-RRDB arch."""
    compact = pytest.importorskip("spandrel.architectures.Compact")
    torch.manual_seed(0)
    net = compact.Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4)
    model = load_model({"params": net.state_dict()})
    assert model.name != "RRDB" and model.scale == 4 and model.in_channels == 3 and model.settings == {}
    small = photo[:16, :20]
    out = Upscaler(model, tile=10_000).upscale(small)
    with torch.no_grad():
        expected = net(torch.from_numpy(small / 255.0).float().permute(2, 0, 1)[None]).clamp(0, 1)
    expected = np.rint(expected[0].permute(1, 2, 0).numpy() * 255)
    assert out.shape == (64, 80, 3) and np.abs(out - expected).max() <= 1
    with pytest.raises(ModelLoadError, match="unknown architecture"):
        load_model({"foo.weight": torch.zeros(3, 3)})
    esrgan = pytest.importorskip("spandrel.architectures.ESRGAN")
    old_style = esrgan.ESRGAN(num_filters=8, num_blocks=1, scale=4).state_dict()  # model.0.weight, ...
    assert load_model(old_style).scale == 4
    flat = load_model({f"params_ema.{k}": v for k, v in tiny_rrdb(2).state_dict().items()})
    assert flat.name == "RRDB" and flat.scale == 2


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned.txt"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    path = tmp_path / "evil.pth"
    torch.save({"params": tiny_rrdb().state_dict(), "extra": Payload()}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_model(path)
    assert not marker.exists()
    message = str(info.value)
    assert str(path) in message and "refused" in message and "could run arbitrary code" in message


def test_bad_model_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="junk.pth"):
        load_model(junk)
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model(tmp_path / "missing.pth")


# -- tiling ------------------------------------------------------------------------------------

def wide_blur_model(layers: int = 32) -> LoadedModel:
    """A deterministic net with a wide receptive field: ``layers`` zero-padded 3x3 box filters
    (Gaussian-like, sigma ~4.6 px, support +-32 px), then x4 nearest upsampling."""
    convs = []
    for _ in range(layers):
        conv = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        nn.init.constant_(conv.weight, 1 / 9)
        convs.append(conv)
    net = nn.Sequential(*convs, nn.Upsample(scale_factor=4, mode="nearest"))
    return LoadedModel(module=net, name="blur", scale=4, in_channels=3, out_channels=3)


def test_tiled_matches_untiled_on_a_real_photo(photo_strip):
    """Default tile_pad, four 40 px tiles: >= 50 dB against one pass, for a random tiny RRDB and
    for a net whose receptive field is wide (random tiny RRDBs barely look past a few px). The
    real x4plus weights were measured separately (see DEFAULT_TILE_PAD)."""
    for model in (load_model(tiny_rrdb(4).state_dict()), wide_blur_model()):
        whole = Upscaler(model, tile=10_000).upscale(photo_strip)
        upscaler = Upscaler(model, tile=40)
        assert upscaler.tile_pad == DEFAULT_TILE_PAD
        tiled = upscaler.upscale(photo_strip)
        assert psnr(whole, tiled) >= 50.0, psnr(whole, tiled)
    hard = Upscaler(model, tile=40, tile_pad=8, blend=0).upscale(photo_strip)
    assert psnr(whole, hard) < 50.0  # with little context seams show; the default hides them


def test_tiling_is_exact_for_a_pointwise_model_and_blends_to_one(photo):
    for tile, pad in [(8, 0), (10, 3), (23, 5), (64, 32)]:
        out = Upscaler(nearest_model(), tile=tile, tile_pad=pad).upscale(photo[:37, :29])
        np.testing.assert_array_equal(out, np.repeat(np.repeat(photo[:37, :29], 4, 0), 4, 1))
    calls = []
    Upscaler(nearest_model(), tile=10).upscale(photo[:37, :29], on_tile=lambda *a: calls.append(a))
    assert calls == [(i, 12) for i in range(1, 13)]  # 4 rows x 3 columns of tiles


def test_output_float_buffers_are_bounded_by_a_tile_row():
    """128x512 -> 512x2048 in 16 px tiles: host allocations stay near the uint8 output (3 MB)
    plus one tile row's float32 strip (2 MB), below half a float32 copy of the output (12.6 MB)."""
    img = np.random.default_rng(0).integers(0, 256, (128, 512, 3), dtype=np.uint8)
    upscaler = Upscaler(nearest_model(), tile=16, tile_pad=4)
    tracemalloc.start()
    out = upscaler.upscale(img)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    float_output = out.size * 4
    assert peak < out.nbytes + float_output // 2, (peak, out.nbytes, float_output)


def test_out_of_memory_halves_the_tile_then_explains(photo):
    class OomAbove(nn.Module):
        def __init__(self, limit):
            super().__init__()
            self.limit, self.sizes = limit, []

        def forward(self, x):
            self.sizes.append(max(x.shape[-2:]))
            if max(x.shape[-2:]) > self.limit:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    model = LoadedModel(module=OomAbove(40), name="oom", scale=2, in_channels=3, out_channels=3)
    upscaler = Upscaler(model, tile=64, tile_pad=4)
    with pytest.warns(RuntimeWarning, match="retrying with 32"):
        out = upscaler.upscale(photo)
    assert out.shape == (128, 128, 3) and upscaler.tile == 32
    never = Upscaler(LoadedModel(module=OomAbove(0), name="oom", scale=2, in_channels=3, out_channels=3), tile=64)
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="out of cpu memory even with 32 px") as info:
        never.upscale(photo)
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)


def test_precision_choices():
    model = load_model(tiny_rrdb().state_dict())
    assert Upscaler(model, device="cpu").dtype == torch.float32
    with pytest.raises(ValueError, match="fp16 inference on CPU is not supported"):
        Upscaler(model, device="cpu", precision="fp16")
    bf16 = Upscaler(model, device="cpu", precision="bf16")
    img = np.full((8, 8, 3), 128, np.uint8)
    assert bf16.upscale(img).shape == (32, 32, 3)
    assert next(model.module.parameters()).dtype == torch.float32  # the caller's model is untouched


# -- image layouts and formats -----------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 1])
def test_odd_sizes_with_pixel_unshuffle_models(photo, scale):
    model = load_model(tiny_rrdb(scale).state_dict())
    for h, w in [(7, 9), (1, 3), (13, 5)]:
        out = Upscaler(model, tile=10_000).upscale(photo[:h, :w])
        assert out.shape == (h * scale, w * scale, 3)
    img = photo[:33, :27]
    whole = Upscaler(model, tile=10_000).upscale(img)
    assert psnr(whole, Upscaler(model, tile=12).upscale(img)) >= 50.0


def test_outscale_resizes_to_the_requested_factor(photo):
    upscaler = Upscaler(nearest_model(), tile=0)
    assert upscaler.upscale(photo[:10, :7], outscale=3.5).shape == (35, 25, 3)  # 24.5 rounds up
    assert upscaler.upscale(photo[:10, :7], outscale=1.5).shape == (15, 11, 3)
    assert upscaler.output_size(10, 7, 3.5) == (35, 25)


def test_gray_alpha_and_16bit_layouts(photo):
    upscaler = Upscaler(load_model(tiny_rrdb().state_dict()), tile=10_000)
    gray = cv2.cvtColor(photo[:12, :10], cv2.COLOR_RGB2GRAY)
    assert upscaler.upscale(gray).shape == (48, 40)
    rgba = np.dstack([photo[:12, :10], np.tile(np.linspace(0, 255, 10, dtype=np.uint8), (12, 1))])
    by_model = upscaler.upscale(rgba)
    assert by_model.shape == (48, 40, 4) and by_model.dtype == np.uint8
    bicubic = Upscaler(upscaler.model, tile=10_000, alpha="bicubic").upscale(rgba)
    np.testing.assert_array_equal(bicubic[:, :, 3], cv2.resize(rgba[:, :, 3], (40, 48), interpolation=cv2.INTER_CUBIC))
    np.testing.assert_array_equal(bicubic[:, :, :3], by_model[:, :, :3])
    through_net = Upscaler(nearest_model(), tile=8).upscale(rgba)  # alpha as gray through the "network"
    np.testing.assert_array_equal(through_net[:, :, 3], np.repeat(np.repeat(rgba[:, :, 3], 4, 0), 4, 1))
    la = Upscaler(nearest_model(), tile=8).upscale(rgba[:, :, 2:])
    assert la.shape == (48, 40, 2) and np.array_equal(la[:, :, 1], through_net[:, :, 3])
    deep = (photo[:12, :10].astype(np.uint16) * 257)
    out16 = upscaler.upscale(deep)
    assert out16.dtype == np.uint16 and out16.shape == (48, 40, 3)
    out8 = upscaler.upscale(photo[:12, :10])
    assert np.abs(out16 / 257.0 - out8).max() <= 1.5  # same picture, finer steps
    assert len(np.unique(out16)) > len(np.unique(out8))


def _png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def test_files_keep_their_kind_end_to_end(tmp_path, photo):
    """gray -> gray, RGBA -> RGBA PNG, 16-bit -> 16-bit, palette and LA PNGs converted."""
    upscaler = Upscaler(load_model(tiny_rrdb().state_dict()), tile=10_000)
    small = photo[:10, :12]
    files = {
        "gray.png": cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))[1].tobytes(),
        "rgba.png": cv2.imencode(".png", np.dstack([small[:, :, ::-1], np.full((10, 12), 100, np.uint8)]))[1].tobytes(),
        "deep.png": cv2.imencode(".png", small[:, :, ::-1].astype(np.uint16) * 257)[1].tobytes(),
        "deep.tif": cv2.imencode(".tif", small[:, :, ::-1].astype(np.uint16) * 257)[1].tobytes(),
        "palette.png": _png_bytes(Image.fromarray(small).quantize(8)),
        "palette_t.png": _png_bytes(Image.fromarray(small).quantize(8), transparency=0),
        "la.png": _png_bytes(Image.fromarray(np.dstack([small[:, :, 0], small[:, :, 1]]), "LA")),
    }
    expect = {"gray.png": ((40, 48), np.uint8), "rgba.png": ((40, 48, 4), np.uint8),
              "deep.png": ((40, 48, 3), np.uint16), "deep.tif": ((40, 48, 3), np.uint16),
              "palette.png": ((40, 48, 3), np.uint8), "palette_t.png": ((40, 48, 4), np.uint8),
              "la.png": ((40, 48, 4), np.uint8)}  # gray + alpha is written as RGBA with R = G = B
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    jobs = plan_jobs(tmp_path, tmp_path / "out")
    result = run_jobs(upscaler, jobs, progress=False)
    assert result.ok, result.summary()
    for name, (shape, dtype) in expect.items():
        out_path = tmp_path / "out" / f"{Path(name).stem}_out{Path(name).suffix}"
        out = load_image(out_path).pixels
        assert (out.shape, out.dtype) == (shape, dtype), name
    rgba_out = load_image(tmp_path / "out" / "rgba_out.png").pixels
    assert (rgba_out[:, :, 3] == 100).all()
    la_out = load_image(tmp_path / "out" / "la_out.png").pixels
    assert np.array_equal(la_out[:, :, 0], la_out[:, :, 2])
    assert load_image(tmp_path / "la.png").pixels.shape == (10, 12, 2)


def test_exif_orientation_is_applied(tmp_path, photo):
    im = Image.fromarray(photo[:10, :16])
    exif = im.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    im.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    loaded = load_image(path).pixels
    with Image.open(path) as reference:
        np.testing.assert_array_equal(loaded, np.asarray(ImageOps.exif_transpose(reference)))
    assert loaded.shape == (16, 10, 3)
    for orientation in range(1, 9):  # the numpy path (PNG/TIFF) agrees with Pillow
        png = Image.fromarray(photo[:5, :7])
        exif = png.getexif()
        exif[0x0112] = orientation
        data = _png_bytes(png, exif=exif.tobytes())
        with Image.open(io.BytesIO(data)) as ref:
            expected = np.asarray(ImageOps.exif_transpose(ref).convert("RGB"))
        np.testing.assert_array_equal(apply_orientation(photo[:5, :7], orientation), expected)
    out = Upscaler(nearest_model(), tile=0).upscale(loaded)
    save_image(tmp_path / "up.jpg", out)
    assert load_image(tmp_path / "up.jpg").pixels.shape == (64, 40, 3)


# -- folders and the command line ----------------------------------------------------------------

def _cli():
    return load_script("inference")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny_x2.pth"
    torch.save({"params_ema": tiny_rrdb(2).state_dict()}, path)
    return path


def test_folder_with_broken_files_completes_the_rest(tmp_path, photo, model_file, capsys):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(src / "a.png"), photo[:8, :8])
    cv2.imwrite(str(src / "sub" / "b.jpg"), photo[:6, :10])
    cv2.imwrite(str(src / "sub" / "deeper" / "c.webp"), photo[:5, :5])
    Image.fromarray(photo[:4, :6, ::-1]).save(src / "d.gif")  # every format the reader takes is picked up
    cv2.imwrite(str(src / "e.ppm"), photo[:6, :4])
    (src / "empty.png").write_bytes(b"")
    (src / "sub" / "text.png").write_text("not an image")
    good = cv2.imencode(".png", photo)[1].tobytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    good_jpg = cv2.imencode(".jpg", photo)[1].tobytes()
    (src / "truncated.jpg").write_bytes(good_jpg[: len(good_jpg) // 2])
    (src / "header.jpg").write_bytes(good_jpg[:20])  # JPEG magic, then nothing Pillow can identify
    (src / "notes.txt").write_text("ignored")
    code = _cli().main(["-i", str(src), "-o", str(tmp_path / "out"), "-m", str(model_file), "--quiet"])
    assert code == 1
    out = tmp_path / "out"
    assert cv2.imread(str(out / "a_out.png")).shape == (16, 16, 3)
    assert cv2.imread(str(out / "sub" / "b_out.jpg")).shape == (12, 20, 3)
    assert cv2.imread(str(out / "sub" / "deeper" / "c_out.webp")).shape == (10, 10, 3)
    assert cv2.imread(str(out / "d_out.png")).shape == (8, 12, 3)  # GIF is not written: PNG instead
    assert cv2.imread(str(out / "e_out.png")).shape == (12, 8, 3)
    err = capsys.readouterr().err
    for bad in ("empty.png", "text.png", "truncated.png", "truncated.jpg", "header.jpg"):
        assert bad in err
        assert not list(out.rglob(f"{Path(bad).stem}_out*"))
    for bad, why in (("truncated.jpg", "image file is truncated"), ("header.jpg", "cannot identify image file)")):
        line = next(line.strip() for line in err.splitlines() if line.strip().startswith(str(src / bad)))
        assert line.startswith(f"{src / bad}: not a readable JPEG (corrupt or truncated: {why}"), line
        assert "BytesIO" not in line and "object at 0x" not in line, line  # the file is named, not Pillow's buffer
    assert "upscaled 5 of 10" in err and "notes.txt" not in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_output_never_overwrites_an_input(tmp_path, photo, model_file, capsys):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), photo[:8, :8])
    cv2.imwrite(str(src / "a_out.png"), photo[:4, :4])
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    cli = _cli()
    assert cli.main(["-i", str(src), "-o", str(src), "-m", str(model_file), "--suffix", "", "--quiet"]) == 2
    assert cli.main(["-i", str(src), "-o", str(src), "-m", str(model_file), "--quiet"]) == 2  # a -> a_out
    assert "would overwrite the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    with pytest.raises(OutputConflictError, match="both be written"):
        (src / "a.jpg").write_bytes(cv2.imencode(".jpg", photo[:8, :8])[1].tobytes())
        plan_jobs(src, tmp_path / "out", ext="png")
    # an output folder inside the input folder: earlier results are not picked up as inputs
    assert cli.main(["-i", str(src), "-o", str(src / "up"), "-m", str(model_file), "--suffix", "x",
                     "--quiet"]) == 0
    assert cli.main(["-i", str(src), "-o", str(src / "up"), "-m", str(model_file), "--suffix", "x",
                     "--quiet"]) == 0
    assert sorted(p.name for p in (src / "up").iterdir()) == ["a_out_x.png", "a_x.jpg", "a_x.png"]


def test_cli_exit_status_and_outscale(tmp_path, photo, model_file, monkeypatch):
    """The script as ``__main__``: exit status 0 with the output written, any float --outscale."""
    import runpy
    import sys

    cv2.imwrite(str(tmp_path / "x.png"), photo[:10, :7])
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "-i", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"),
                                      "-m", str(model_file), "--outscale", "3.5", "--quiet"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert info.value.code == 0
    assert cv2.imread(str(tmp_path / "o" / "x_out.png")).shape == (35, 25, 3)
