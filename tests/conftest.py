"""Shared pytest fixtures: registering the plugin once and a fixed seed per test."""

import logging
import random

import numpy as np
import pytest
import torch

import realesrgan_ext

realesrgan_ext.register()  # applies basicsr fixes, registers our classes (before any basicsr import)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def basicsr_log(caplog):
    """``caplog`` that also sees basicsr's logger (it does not propagate to the root)."""
    logger = logging.getLogger("basicsr")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def one_torch_thread():
    """One torch thread: on shared cores, spinning thread pools cost seconds per call."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_cuda_calls(monkeypatch):
    """basicsr's Real-ESRGAN models on CPU: their ``.cuda()`` calls become no-ops, and their
    ``filter2D`` (which fails on CPU after JPEG: a non-contiguous tensor meets ``.view``) gets a
    contiguous copy, which changes no value."""
    import basicsr.models.realesrgan_model
    import basicsr.models.realesrnet_model
    from basicsr.utils.img_process_util import filter2D

    monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *a, **k: self)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    for module in (basicsr.models.realesrgan_model, basicsr.models.realesrnet_model):
        monkeypatch.setattr(module, "filter2D", lambda img, kernel: filter2D(img.contiguous(), kernel))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
