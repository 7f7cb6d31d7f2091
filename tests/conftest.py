"""Shared test configuration: Agg backend, seeded RNGs, and the GPU/browser skips."""

import os
import shutil

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


@pytest.fixture
def rng():
    """A fresh, seeded numpy Generator for each test."""
    return np.random.default_rng(0)


def _gpu_available() -> bool:
    """A CUDA GPU that both CuPy and torch can use (the gpu-marked tests need both)."""
    try:
        import cupy
        import torch

        return cupy.cuda.runtime.getDeviceCount() > 0 and torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    gpu = None
    for item in items:
        if "gpu" in item.keywords:
            if gpu is None:
                gpu = _gpu_available()
            if not gpu:
                item.add_marker(pytest.mark.skip(reason="needs CuPy and a CUDA GPU"))
        if "browser" in item.keywords and not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
            if os.environ.get("MAMBA_EDU_REQUIRE_BROWSER"):
                item.add_marker(pytest.mark.xfail(reason="chromium missing but required", run=False, strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium"))
