"""The Limits record: defaults, environment variables and flags derived from its fields, and its page."""

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from realesrgan_ext.limits import LimitError, Limits, add_limit_arguments, env_name, limits_from_args, over_limit

DOC = Path(__file__).resolve().parents[1] / "docs" / "security.md"


def test_environment_and_flags_raise_each_limit(monkeypatch):
    monkeypatch.setenv("REALESRGAN_EXT_MAX_IMAGE_PIXELS", "300000000")
    monkeypatch.setenv("REALESRGAN_EXT_MAX_OUTSCALE", "32")
    limits = Limits.from_env()
    assert limits.max_image_pixels == 300_000_000 and limits.max_outscale == 32.0
    parser = argparse.ArgumentParser()
    add_limit_arguments(parser)
    assert "--max-images" not in parser.format_help()  # a web request's limit: only with page=True
    args = parser.parse_args(["--max-model-params", "1e9", "--max-zip-ratio", "2.5"])
    limits = limits_from_args(args)
    assert (limits.max_model_params, limits.max_zip_ratio, limits.max_image_pixels) == (10 ** 9, 2.5, 300_000_000)
    with pytest.raises(ValueError, match="--max-image-frames must be a whole number, got 2.5"):
        limits_from_args(parser.parse_args(["--max-image-frames", "2.5"]))
    for bad in ("0", "-1", "nan", "inf"):
        with pytest.raises(ValueError, match="must be a finite number > 0"):
            limits_from_args(parser.parse_args(["--max-outscale", bad]))
    page = argparse.ArgumentParser()
    add_limit_arguments(page, page=True)
    assert limits_from_args(page.parse_args(["--max-images", "7"])).max_images == 7


def test_over_limit_names_the_value_the_limit_and_how_to_raise_it():
    err = over_limit("x.png: 200x100 px", 20_000, "max_image_pixels", Limits(max_image_pixels=10_000), "px")
    assert isinstance(err, LimitError) and isinstance(err, ValueError)
    assert str(err) == ("x.png: 200x100 px is 20000 px, more than the 10000 px allowed (max_image_pixels; raise it "
                        "with --max-image-pixels or REALESRGAN_EXT_MAX_IMAGE_PIXELS)")


def test_the_security_page_lists_every_limit_with_its_default():
    text = DOC.read_text()
    for f in fields(Limits):
        row = next((line for line in text.splitlines() if line.startswith(f"| `{f.name}` |")), None)
        assert row is not None, f"docs/security.md has no row for {f.name}"
        default = getattr(Limits(), f.name)
        assert row.split("|")[2].split()[0] == (f"{default:g}" if isinstance(default, float) else str(default)), row
    assert env_name("max_image_pixels") in text and "--max-image-pixels" in text
