"""Hostile images, each made here: lying and truncated headers of every accepted format, GIF and TIFF
bombs. Each is refused from its header (or by its decoder) quickly, in bounded memory, with a message
naming the file; through the library, the training reader, the command line and the web page."""

import functools
import io
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.data.image_header import gif_frames, read_header
from realesrgan_ext.data.image_io import ImageReadError, ImageTooLargeError, decode_image
from realesrgan_ext.inference.image_io import decode, load_image
from realesrgan_ext.inference.upscaler import Upscaler, check_outscale
from realesrgan_ext.limits import LimitError, Limits
from tests.helpers import load_script
from tests.hostile import measure

REPO = Path(__file__).resolve().parents[1]
FORMATS = ("png", "jpg", "webp", "bmp", "tif", "ppm", "gif")


def pixels(h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def encoded(fmt: str, img: np.ndarray | None = None) -> bytes:
    img = pixels() if img is None else img
    if fmt == "gif":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "GIF")
        return buf.getvalue()
    return cv2.imencode(f".{fmt}", img)[1].tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def lying(fmt: str) -> bytes:
    """A valid small file of ``fmt`` whose header now claims billions of pixels (checksums kept valid)."""
    data = bytearray(encoded(fmt))
    if fmt == "png":
        ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
        return bytes(data[:8] + png_chunk(b"IHDR", ihdr) + data[33:])
    if fmt == "jpg":
        sof = data.index(b"\xff\xc0")
        data[sof + 5: sof + 9] = struct.pack(">HH", 60000, 60000)
    elif fmt == "webp":  # lossless: 14-bit (width - 1), (height - 1) after the 0x2f signature
        assert data[12:16] == b"VP8L" and data[20] == 0x2F
        bits = struct.unpack("<I", data[21:25])[0]
        data[21:25] = struct.pack("<I", (bits & ~0x0FFFFFFF) | 16383 | (16383 << 14))
    elif fmt == "bmp":
        data[18:26] = struct.pack("<ii", 50000, 50000)
    elif fmt == "tif":
        _patch_tiff_size(data, 60000, 60000)
    elif fmt == "ppm":
        return b"P6\n100000 100000\n255\n" + bytes(data[-64:])
    elif fmt == "gif":
        data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def _patch_tiff_size(data: bytearray, width: int, height: int) -> None:
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd: ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", data[entry: entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[entry + 8: entry + 12] = struct.pack("<HH" if kind == 3 else "<I", value, 0) if kind == 3 \
                else struct.pack("<I", value)


def scan_bomb(repeats: int = 500) -> bytes:
    """A progressive JPEG with one of its scans repeated (each costs libjpeg a pass over the image)."""
    buf = io.BytesIO()
    Image.fromarray(pixels(64, 64)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    starts = [i for i in range(len(data) - 1) if data[i: i + 2] == b"\xff\xda"]
    scan = min((data[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)), key=len)
    return data[:-2] + scan * repeats + b"\xff\xd9"


def many_frames(fmt: str, count: int = 300) -> bytes:
    frames = [Image.fromarray(np.full((2, 2, 3), i % 256, np.uint8)) for i in range(count)]
    buf = io.BytesIO()
    frames[0].save(buf, {"gif": "GIF", "tif": "TIFF"}[fmt], save_all=True, append_images=frames[1:])
    return buf.getvalue()


@functools.cache
def corpus() -> dict[str, tuple[bytes, type, str]]:
    """name -> (bytes, the error type, a fragment of its message)."""
    items = {}
    for fmt in FORMATS:
        items[f"lying_{fmt}"] = (lying(fmt), ImageTooLargeError, "max_image_pixels")
        good = encoded(fmt)
        items[f"truncated_{fmt}"] = (good[: len(good) // 2], ImageReadError, "not a readable")
        items[f"header_only_{fmt}"] = (good[:30], ImageReadError, "not a readable")
    items["jpeg_scan_bomb"] = (scan_bomb(), ImageTooLargeError, "its JPEG scan count is 510, more than the 100")
    items["gif_bomb_frames"] = (many_frames("gif"), ImageTooLargeError, "frame count is 257")
    items["tiff_bomb_pages"] = (many_frames("tif"), ImageTooLargeError, "frame count is 257")
    items["noise"] = (bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), ImageReadError,
                      "not a readable image")
    items["tga_polyglot"] = (b"\0\0\x02" + b"\0" * 9 + struct.pack("<HH", 1, 1) + b"\x18\0" + b"\0\0\0",
                             ImageReadError, "a TGA image; accepted: PNG, JPEG")
    return items


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile_images")
    paths = {}
    for name, (data, _, _) in corpus().items():
        suffix = name.rsplit("_", 1)[-1] if name.rsplit("_", 1)[-1] in FORMATS[:5] else "png"  # PPM, GIF: by content
        paths[name] = folder / f"{name}.{suffix}"
        paths[name].write_bytes(data)
    return paths


def test_every_hostile_image_is_refused_from_its_header_quickly(hostile):
    expected = corpus()
    assert max(len(data) for data, _, _ in expected.values()) < 64 * 1024  # small files, huge claims
    for name, path in hostile.items():
        _, kind, fragment = expected[name]
        for reader in (load_image, lambda p: decode_image(p.read_bytes(), str(p))):  # inference and training
            cost = measure(lambda p=path, r=reader: r(p))
            cost.refused(kind, str(path), fragment)
        if kind is ImageTooLargeError:
            assert isinstance(cost.error, LimitError) and "REALESRGAN_EXT_MAX_" in str(cost.error)


def test_the_small_valid_files_they_come_from_decode(hostile):
    for fmt in FORMATS:
        image = decode(encoded(fmt), f"ok.{fmt}", fmt)
        assert image.pixels.shape == (24, 32, 3), fmt
        assert read_header(encoded(fmt), fmt).frames == 1
    assert gif_frames(many_frames("gif", 5), 100) == 5 and gif_frames(many_frames("gif", 50), 10) == 10
    assert read_header(many_frames("tif", 5), "t").frames == 5


def test_limits_are_raised_by_setting_or_argument(hostile, monkeypatch):
    data = encoded("png", pixels(100, 100))
    with pytest.raises(ImageTooLargeError, match="100x100 px is 10000 px, more than the 9999 px allowed"):
        decode(data, "a.png", limits=Limits(max_image_pixels=9999))
    monkeypatch.setenv("REALESRGAN_EXT_MAX_IMAGE_FRAMES", "400")
    assert read_header(many_frames("gif"), "g").frames == 300
    assert decode(many_frames("gif"), "g.gif").pixels.shape[:2] == (2, 2)  # the first frame only


def test_opencv_pixel_limit_gives_our_message(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2 ** 31)  # as allow_in_pillow does for a raised limit
    ihdr = struct.pack(">IIBBBBB", 40000, 30000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        png_chunk(b"IEND", b"")
    cost = measure(lambda: decode(data, "wide.png", limits=Limits(max_image_pixels=2 ** 31)))
    message = cost.refused(ImageReadError, "wide.png: OpenCV refused to decode 40000x30000 px",
                           "OPENCV_IO_MAX_IMAGE_PIXELS")
    assert "Assertion" not in message and "-215" not in message


def test_outscale_and_output_size_are_checked_before_work():
    for bad in (-2, 0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="outscale must be a finite number > 0"):
            check_outscale(bad)
    with pytest.raises(LimitError, match="outscale is 20000, more than the 16 allowed"):
        check_outscale(20000)
    assert check_outscale(16) == 16.0 and check_outscale(None) is None
    model = {"params": RRDBGenerator(num_feat=4, num_block=1, num_grow_ch=2, scale=4).state_dict()}
    upscaler = Upscaler(model, device="cpu", limits=Limits(max_output_pixels=1000))
    cost = measure(lambda: upscaler.upscale(np.zeros((8, 8, 3), np.uint8)))  # 32 x 32 = 1024 px
    cost.refused(LimitError, "the network's x4 output of a 8x8 px image (32x32 px) is 1024 px, more than the 1000 px")
    with pytest.raises(LimitError, match="network's x4 output"):  # made before it is resized down
        upscaler.upscale(np.zeros((8, 8, 3), np.uint8), outscale=0.5)
    with pytest.raises(LimitError, match=r"the x5 result of a 6x6 px image \(30x30 px\) is 900 px, more than the 800"):
        Upscaler(model, device="cpu", limits=Limits(max_output_pixels=800)).upscale(np.zeros((6, 6), np.uint8), 5)
    assert upscaler.upscale(np.zeros((7, 7, 3), np.uint8), outscale=0.5).shape == (4, 4, 3)


def load_cli():
    return load_script("inference")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    torch.save({"params": RRDBGenerator(num_feat=4, num_block=1, num_grow_ch=2, scale=4).state_dict()}, path)
    return path


def test_cli_refuses_them_and_bad_arguments_before_work(hostile, model_file, tmp_path, capsys, monkeypatch):
    cli = load_cli()
    base = ["-o", str(tmp_path / "out"), "-m", str(model_file), "--quiet", "--backend", "pytorch"]
    folder = next(iter(hostile.values())).parent
    cost = measure(lambda: cli.main(["-i", str(folder), *base]))
    assert cost.seconds < 2 * len(hostile)
    assert cost.result == 2  # nothing could be used
    err = capsys.readouterr().err
    assert f"upscaled 0 of {len(hostile)}" in err and "Traceback" not in err
    for name, path in hostile.items():
        assert f"{path}: " in err, name
    for outscale, fragment in (("-2", "outscale must be a finite number > 0, got -2.0"),
                               ("nan", "outscale must be a finite number > 0, got nan"),
                               ("20000", "outscale is 20000, more than the 16 allowed")):
        assert cli.main(["-i", str(folder), *base, "--outscale", outscale]) == 2
        assert capsys.readouterr().err.startswith(f"error: {fragment}")
    assert cli.main(["-i", str(folder), *base[:3], "realesrgan-x5plus"]) == 2
    err = capsys.readouterr().err
    assert "realesrgan-x5plus: no such model file, nor a bundled model name (bundled: realesrgan-x4plus," in err
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), pixels(8, 8))
    assert cli.main(["-i", str(good), *base, "--max-output-pixels", "100"]) == 2
    assert "more than the 100 px allowed (max_output_pixels; raise it with --max-output-pixels" in \
        capsys.readouterr().err
    assert cli.main(["-i", str(good), *base, "--max-output-pixels", "1024"]) == 0

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    assert cli.main(["-i", str(good), *base]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_page_refuses_them_per_file_and_serves_the_rest(hostile, model_file, tmp_path):
    from realesrgan_ext.webui.app import run_request
    from realesrgan_ext.webui.model_choices import UpscalerCache
    from realesrgan_ext.webui.settings import WebSettings

    good = tmp_path / "good.png"
    cv2.imwrite(str(good), pixels(8, 8))
    settings = WebSettings(tmp_path / "web", tmp_path / "experiments")
    files = [str(p) for p in hostile.values()] + [str(good)]
    cost = measure(lambda: run_request(settings, UpscalerCache("cpu"), files, None, str(model_file), 0, 0, "auto",
                                       "pytorch"))
    status, report = cost.result
    assert cost.seconds < 2 * len(files)
    assert len(report.written) == 1 and len(report.failed) == len(hostile)
    reasons = dict(report.failed)
    for name, path in hostile.items():
        assert corpus()[name][2] in reasons[path.name], (name, reasons[path.name])
    status, report = run_request(settings, UpscalerCache("cpu"), [str(good)], None, "no-such.pth", 20000, 0, "auto")
    assert report is None and "outscale is 20000, more than the 16 allowed" in status


def test_uploads_are_bounded_in_count_pixels_and_inflation_before_decoding(hostile, tmp_path):
    from realesrgan_ext.webui.uploads import collect_uploads

    tiny = encoded("png", pixels(1, 1))
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(300):
            zf.writestr(f"img{i:03d}.png", tiny)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("flat.bmp", encoded("bmp", np.zeros((1000, 1000, 3), np.uint8)))  # 3 MB -> ~3 KB
    lies = tmp_path / "lies.zip"
    with zipfile.ZipFile(lies, "w") as zf:
        zf.writestr("a.png", lying("png"))
        zf.writestr("b.png", encoded("png", pixels(100, 100)))
        zf.writestr("c.png", encoded("png", pixels(100, 100)))
    cost = measure(lambda: collect_uploads([many, bomb, lies, hostile["gif_bomb_frames"]]))
    cost.bounded()
    images, failed = cost.result
    reasons = dict(failed)
    assert "its image count is 300, more than the 200 allowed (max_images" in reasons["many.zip"]
    assert "inflates" in reasons["bomb.zip"] and "max_zip_ratio" in reasons["bomb.zip"]
    assert "max_image_pixels" in reasons["lies.zip/a.png"]
    assert "frame count is 257" in reasons["gif_bomb_frames.png"]
    assert [i.name for i in images] == ["lies.zip/b.png", "lies.zip/c.png"]
    images, failed = collect_uploads([lies], limits=Limits(max_request_pixels=15_000))
    assert [i.name for i in images] == ["lies.zip/b.png"]
    assert "skipped: with it, the request's images together is 20000 px, more than the 15000 px allowed" in \
        dict(failed)["lies.zip/c.png"]
    images, failed = collect_uploads([many], limits=Limits(max_images=1000))
    assert len(images) == 300 and images[0].read().pixels.shape == (1, 1, 3)


@pytest.mark.slow
def test_ctrl_c_exits_130_without_a_traceback(model_file, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(200):
        cv2.imwrite(str(folder / f"{i:03d}.png"), pixels(96, 96))
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "inference.py"), "-i", str(folder), "-o",
                             str(tmp_path / "out"), "-m", str(model_file), "--backend", "pytorch", "--tile", "32"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = ""
    deadline = time.monotonic() + 120
    while "Upscaler(" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.readline()  # the model is loaded once this line is out; images are running
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    err = seen + proc.stderr.read()
    assert proc.wait(timeout=60) == 130, err[-2000:]
    assert "Traceback" not in err and err.rstrip().endswith("interrupted"), err[-2000:]
