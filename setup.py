"""realesrgan_ext: ESRGAN / Real-ESRGAN training and inference as a BasicSR plugin.

Install with ``bash scripts/install.sh`` (torch and basicsr need a set order; see README).
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="realesrgan_ext",
    version="0.1.0",
    description="ESRGAN / Real-ESRGAN training, data tools and inference as a BasicSR plugin",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["realesrgan_ext", "realesrgan_ext.*"]),
    python_requires=">=3.10",
    install_requires=["torch>=2.1", "torchvision>=0.16", "basicsr==1.4.2", *read_requirements("requirements.txt")],
    # The benchmark's reference, Real-ESRGAN 0.3.0, is not an extra: it must be installed with
    # --no-deps (its requirements pull tb-nightly and opencv-python); see scripts/benchmark_inference.py.
    extras_require={"dev": read_requirements("requirements-dev.txt")},
)
