"""The one helper layer (mamba_edu._backend): one rule for what the public functions accept.

The functions of lessons 2, 3 and 6 take numpy arrays or torch tensors. Integers and booleans become
floats (numpy: float64; torch: the default dtype), half precision is computed in float32 and cast back,
and float64 stays float64 — in every function alike (``me.scan`` used to reject an integer tensor that
``me.lti_scan`` accepted). Reference: the same function on the same values as numpy float64 (these
tests are about agreement between input kinds; each function's numerics are checked against
independent references in its own test file). Tolerances, relative: 1e-12 for float64 results, 1e-6
for float32 (these small 0/1 inputs give nearly exact sums, up to exp), 2e-3 for float16.
"""

import numpy as np
import pytest
import torch

import mamba_edu as me
from mamba_edu._backend import float_tensors, is_torch
from mamba_edu._precision import half_dtype, widen

# every input holds only 0s and 1s, so bool, int, float16 and float64 represent it exactly
CASES = {
    "scan": (lambda a, b: me.scan(a, b, method="blelloch"), ([1, 0, 1, 1], [1, 1, 0, 1])),
    "lti_scan": (me.lti_scan, ([1, 0], [1, 1], [1, 1], [1, 0, 1])),
    "lti_scan dense": (me.lti_scan, ([[1, 1], [0, 1]], [1, 1], [1, 0], [1, 0, 1])),
    "ssm_kernel": (lambda A_bar, B_bar, C: me.ssm_kernel(A_bar, B_bar, C, 4), ([1, 0], [1, 1], [1, 1])),
    "causal_conv": (me.causal_conv, ([1, 0, 1, 1], [1, 1, 0])),
    "discretize_diag": (lambda A, B, delta: me.discretize_diag(A, B, delta)[1], ([0, 1], [1, 1], 1)),
    "discretize": (lambda A, B, delta: me.discretize(A, B, delta)[0], ([[0, 1], [0, 0]], [1, 1], 1)),
}
NUMPY = {"bool": np.bool_, "int": np.int64, "float16": np.float16, "float64": np.float64}
TORCH = {"bool": torch.bool, "int": torch.int64, "float16": torch.float16, "float64": torch.float64}
TORCH_OUT = {"bool": torch.get_default_dtype(), "int": torch.get_default_dtype(), "float16": torch.float16,
             "float64": torch.float64}


def _reference(func, values):
    return func(*(np.asarray(v, dtype=np.float64) for v in values))


@pytest.mark.parametrize("kind", NUMPY)
@pytest.mark.parametrize("case", CASES)
def test_numpy_inputs_of_every_dtype_give_float64(case, kind):
    func, values = CASES[case]
    got = func(*(np.asarray(v, dtype=NUMPY[kind]) for v in values))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64, (case, kind, got.dtype)
    np.testing.assert_allclose(got, _reference(func, values), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", TORCH)
@pytest.mark.parametrize("case", CASES)
def test_torch_inputs_of_every_dtype_agree(case, kind):
    """Integers and booleans are accepted by every function (the default float dtype comes back)."""
    func, values = CASES[case]
    got = func(*(torch.tensor(v, dtype=TORCH[kind]) for v in values))
    assert is_torch(got) and got.dtype == TORCH_OUT[kind], (case, kind, got.dtype)
    rtol = 2e-3 if kind == "float16" else 1e-6 if got.dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(got.double().numpy(), _reference(func, values), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("case", CASES)
def test_numbers_and_arrays_beside_a_tensor_take_its_dtype(case):
    """One float32 tensor, the rest numpy integer arrays: float32 out, in every function."""
    func, values = CASES[case]
    first, *rest = values
    got = func(torch.tensor(first, dtype=torch.float32), *(np.asarray(v) for v in rest))
    assert is_torch(got) and got.dtype == torch.float32, (case, got.dtype)
    np.testing.assert_allclose(got.double().numpy(), _reference(func, values), rtol=1e-6, atol=1e-6)


def test_float64_numpy_beside_a_float32_tensor_is_not_narrowed():
    """A numpy array takes part in the promotion, as a tensor of its dtype would in torch: no silent float32."""
    A_bar = np.array([0.99999999, 0.5])  # rounds to 1.0 in float32: the state would stop decaying
    got = me.lti_scan(A_bar, [1, 1], [1, 1], torch.ones(2000))
    assert got.dtype == torch.float64
    want = me.lti_scan(A_bar, np.ones(2), np.ones(2), np.ones(2000))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert float(got[-1]) < 2001.99  # float32 would give 2002.0


def test_promotion_of_complex_lists_and_strided_arrays():
    a, b = float_tensors({"a": torch.ones(2, dtype=torch.float16), "b": np.array([1j])})
    assert a.dtype == b.dtype == torch.complex128  # the array takes part; never complex32
    a, b = float_tensors({"a": torch.ones(2, dtype=torch.float16), "b": 1j})
    assert a.dtype == b.dtype == torch.complex64  # a number does not widen, but complex32 is avoided
    a, b = float_tensors({"a": torch.ones(3), "b": [1.0, 2.0, 3.0]})
    assert b.dtype == torch.float32  # a list counts as torch.tensor makes it
    reversed_view = np.arange(3.0)[::-1]  # negative strides
    np.testing.assert_allclose(me.scan(reversed_view, torch.ones(3)).numpy(), me.scan(reversed_view, np.ones(3)))


def test_float_tensors_rule():
    a, b, c = float_tensors({"a": torch.tensor([1, 2]), "b": torch.tensor([True]), "c": 1.5})
    assert a.dtype == b.dtype == c.dtype == torch.get_default_dtype()
    a, b = float_tensors({"a": torch.ones(2, dtype=torch.float64), "b": np.array([1j])})
    assert a.dtype == b.dtype == torch.complex128  # complex if any value is
    with pytest.raises(ValueError, match="b must be numeric"):
        float_tensors({"a": torch.ones(2), "b": np.array(["x"])})
    with pytest.raises(ValueError, match="a on cpu, b on meta"):
        float_tensors({"a": torch.ones(2), "b": torch.ones(2, device="meta")})


class _MyTensor(torch.Tensor):
    """A tensor subclass defined outside torch: still a torch tensor for every helper."""


def test_a_tensor_subclass_is_torch_for_every_helper():
    x = torch.ones(3, dtype=torch.float16).as_subclass(_MyTensor)
    assert is_torch(x)
    assert half_dtype(x) == torch.float16
    assert widen(x)[0].dtype == torch.float32
    h = me.scan(x, x)
    assert is_torch(h) and h.dtype == torch.float16
