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


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
