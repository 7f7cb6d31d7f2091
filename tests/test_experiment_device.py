"""run_experiment(..., device=...): the device is checked, recorded, and used for both models."""

import pytest
import torch

from mamba_edu.experiments import run_experiment


def test_device_is_recorded_and_used():
    result = run_experiment("induction-heads", progress=False, steps=2, eval_every=2, device="cpu")
    assert result["device"] == "cpu" and 0.0 <= result["selective_accuracy"] <= 1.0


@pytest.mark.parametrize("device", ["tpu", "npu", 3.5])
def test_bad_device_is_a_clear_error(device):
    with pytest.raises(ValueError, match="device"):
        run_experiment("induction-heads", progress=False, steps=2, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        run_experiment("induction-heads", progress=False, steps=2, device="cuda")
