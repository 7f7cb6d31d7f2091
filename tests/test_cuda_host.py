"""The v2 launcher's host side, on the CPU: what it hands each kernel, and the NaN/inf words.

The CuPy kernels are replaced by recorders, and the CUDA stream and event by stand-ins, so no GPU is needed.
The stand-ins are asynchronous like the GPU: a "kernel" queues its write of the error bits (through the address
it is given, as the real one's atomicOr), and only a synchronisation runs the queue — up to an event's place in
it, or all of it for a stream. So reading a word too early, or waiting on the wrong event, reads 0 here too.
What this checks, cheaply and in CI:
- the argument lists against the .cu signatures (order, pointer or int, which tensor);
- the bookkeeping of the pinned error words (per thread, pooled, read by the backward, warned when never read).
The GPU tests (tests/gpu) run the same paths with the real kernels.
"""

import ctypes
import gc
import re
import struct
import sys
import threading
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mamba_edu.scans import cuda


class GPU:
    """The queue of work the stand-in kernels launched; ``ran`` of it has executed."""

    queue, ran = [], 0

    @classmethod
    def run_to(cls, place):
        while cls.ran < place:
            cls.queue[cls.ran]()
            cls.ran += 1


class Recorder:
    """Stands in for a CuPy RawKernel; ``bits``: what it ORs into the error word, like the kernel's check."""

    def __init__(self, bits=0):
        self.calls, self.bits = [], bits

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        self.calls.append((grid, block, args))
        err = int(args[-1])  # err is the forward's last parameter
        if self.bits and err:
            GPU.queue.append(lambda: setattr(ctypes.c_int32.from_address(err), "value",
                                             ctypes.c_int32.from_address(err).value | self.bits))
        else:
            GPU.queue.append(lambda: None)


class Event:
    def __init__(self, **kwargs):
        self.place = 0  # never recorded: nothing to wait for

    def record(self, stream):
        self.place = len(GPU.queue)

    @property
    def done(self):
        return GPU.ran >= self.place

    def synchronize(self):
        GPU.run_to(self.place)


class Stream:
    def synchronize(self):
        GPU.run_to(len(GPU.queue))


@pytest.fixture
def host(monkeypatch):
    """cuda.py with CPU stand-ins for CuPy, the stream and pinned memory; fresh per-thread words."""
    monkeypatch.setattr(cuda, "_cupy", lambda: SimpleNamespace(cuda=SimpleNamespace(Event=Event)))
    monkeypatch.setattr(cuda, "_torch_stream_ptr", lambda device: 0)
    monkeypatch.setattr(cuda, "_synchronize", lambda stream: Stream().synchronize())
    monkeypatch.setattr(cuda, "_record", lambda event, stream: event.record(stream))
    monkeypatch.setattr(cuda, "_pinned_word", lambda: (lambda w: (w, w.numpy()))(torch.zeros(1, dtype=torch.int32)))
    monkeypatch.setattr(cuda, "_THREAD", threading.local())
    monkeypatch.setattr(GPU, "queue", [])
    monkeypatch.setattr(GPU, "ran", 0)


def _inputs(b=2, d=3, l=40, n=4, grad=False):
    g = torch.Generator().manual_seed(0)
    x = dict(u=torch.randn(b, d, l, generator=g), delta=torch.randn(b, d, l, generator=g),
             A=-torch.rand(d, n, generator=g), B=torch.randn(b, 1, n, l, generator=g),
             C=torch.randn(b, 1, n, l, generator=g), D=torch.randn(d, generator=g),
             z=torch.randn(b, d, l, generator=g), delta_bias=torch.randn(d, generator=g))
    return [x[k].requires_grad_(grad) for k in cuda._ARG_BITS]


def _plan(ins, fwd_bits=0, segments=2):
    """A _Call for CPU tensors whose kernels are recorders (two passes each, as when time is cut in segments)."""
    plan = cuda._Call(cuda._checked(ins), ins, False)
    fwd = cuda.ForwardLaunch(Recorder(), Recorder(fwd_bits), 7, (256,), 0, segments, 32, 3)
    bwd = cuda.BackwardLaunch(Recorder(), Recorder(), 5, (512,), 0, 3, segments, 1)
    plan.forward_plan = lambda in_dtype="float32": fwd
    plan.backward_plan = lambda: bwd
    return plan, fwd, bwd


def _parameters(version, name):
    """(name, is_pointer) of each parameter of a kernel, read from its .cu source."""
    src = cuda.kernel_source(version)
    sig = re.search(rf"{name}\((.*?)\)\s*{{", src, re.S).group(1)
    return [(re.match(r".*?(\w+)$", p.strip()).group(1), "*" in p) for p in sig.split(",")]


def _check_args(args, params, expect, kinds):
    """The launcher's kinds are the parameters' (pointer or int); named pointers are the expected tensors' addresses."""
    assert len(args) == len(params) == len(kinds)
    assert [kind == "P" for kind in kinds] == [is_ptr for _, is_ptr in params]
    for value, (name, is_ptr) in zip(args, params):
        assert type(value) is int and (0 <= value < 2**64 if is_ptr else -(2**31) <= value < 2**31), name
        if name in expect:
            want = expect[name]
            assert int(value) == (0 if want is None else want.data_ptr()), name


def test_forward_and_backward_arguments_follow_the_kernel_signatures(host):
    ins = _inputs()
    plan, fwd, bwd = _plan(ins)
    out, last, h_chk, zeros, pending = cuda._launch_forward(plan, ins, True, True, True, True, defer=True)
    first, kernel = fwd.first.calls, fwd.kernel.calls
    assert len(first) == 1 and len(kernel) == 1 and first[0][0] == (7, 1, 1) and kernel[0][0] == (7, 1, 2)
    assert first[0][2] == kernel[0][2]  # both passes get the same arguments
    params = _parameters("v2", "selective_scan_fwd_v2")
    names = [name for name, _ in params]
    expect = dict(zip(names, [*ins, out, last, h_chk]))
    _check_args(kernel[0][2], params, expect, cuda.FORWARD_KINDS)
    values = dict(zip(names, kernel[0][2]))
    assert int(values["err"]) == pending.word.data_ptr() and int(values["seg_len"]) == 32
    assert int(values["flags"]) == 1 | 2 | 4 | 8 | 16 | 32 | 64  # D, z, bias, softplus, last, checkpoints, check
    assert (int(values["batch"]), int(values["dim"]), int(values["seqlen"]), int(values["seg"])) == (2, 3, 40, 3)

    dout, dlast = torch.randn_like(out), torch.randn_like(last)
    grads = cuda._launch_backward(plan, (*ins, h_chk), True, dout, dlast, zeros)
    first, kernel = bwd.first.calls, bwd.kernel.calls
    assert first[0][0] == (5, 1) and kernel[0][0] == (5, 2)
    params = _parameters("v2_backward", "selective_scan_bwd_v2")
    names = [name for name, _ in params]
    _check_args(kernel[0][2], params, dict(zip(names, [*ins, dout, h_chk, *grads, dlast])), cuda.BACKWARD_KINDS)
    assert [tuple(g.shape) for g in grads] == [tuple(x.shape) for x in ins]
    assert all(g.abs().sum() == 0 for g in grads[2:6])  # the summed gradients start from the zeroed buffer
    summed = sorted((g.data_ptr(), g.numel()) for i, g in enumerate(grads) if i in (2, 3, 4, 5, 7))
    ends = [zeros.data_ptr()] + [ptr + 4 * size for ptr, size in summed]
    assert [ptr for ptr, _ in summed] == ends[:-1]  # back to back in the buffer: no overlap, no gap
    assert ends[-1] == zeros.data_ptr() + 4 * zeros.numel()
    assert all(grads[i].is_contiguous() for i in (2, 3, 4, 5, 7))


def test_check_without_gradients_raises_after_the_kernel(host):
    ins = _inputs()
    plan, _, _ = _plan(ins, fwd_bits=2)  # the kernel saw a NaN in delta
    with pytest.raises(ValueError, match=r"delta \(shape \(2, 3, 40\)\) contains NaN or inf"):
        cuda._launch_forward(plan, ins, True, True, False, False)
    plan, _, _ = _plan(ins, fwd_bits=0)  # the next call starts from a clear word
    cuda._launch_forward(plan, ins, True, True, False, False)


def test_check_with_gradients_is_raised_by_the_backward(host):
    ins = _inputs(grad=True)
    plan, fwd, bwd = _plan(ins, fwd_bits=1)  # a NaN in u
    out = cuda._make_function().apply(plan, True, True, False, *ins)
    assert len(fwd.kernel.calls) == 1 and GPU.ran == 0  # the forward returned without waiting for its kernel
    with pytest.raises(ValueError, match=r"u \(shape"):
        out.sum().backward()
    assert len(bwd.kernel.calls) == 1  # the backward was queued before the flag was read
    assert GPU.ran < len(GPU.queue)  # ... and the wait was for the forward kernel only, not for the backward's
    clean, _, _ = _plan(ins)  # no graph of the backward through raw kernels: an error, not a silent zero
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(cuda._make_function().apply(clean, True, True, False, *ins).sum(), ins[0],
                            create_graph=True)


def test_unread_check_warns_when_freed_and_words_are_reused(host):
    ins = _inputs(grad=True)
    plan, _, _ = _plan(ins, fwd_bits=64)  # a NaN in z; the backward never runs
    with pytest.warns(RuntimeWarning, match="z contained NaN or inf"):
        out = cuda._make_function().apply(plan, True, True, False, *ins)
        del out
        gc.collect()
    plan, _, _ = _plan(ins)
    words = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reused word starts clear: no warning for the NaN call before
        for _ in range(5):  # clean calls whose graphs are dropped: one word, reused
            out = cuda._make_function().apply(plan, True, True, False, *ins)
            words.add(out.grad_fn.pending.word.data_ptr())
            del out
        out = cuda._make_function().apply(plan, True, True, False, *ins)
        out.sum().backward()  # and a clean backward does not raise
        del out
    assert len(words) == 1 and len(cuda._THREAD.pending[plan.device]) == 1


def test_word_of_a_running_kernel_is_not_handed_out(host):
    """A word goes back to the pool only after its kernel is done; until then a new call gets another word."""
    first = cuda._PendingCheck(None)
    first.recorded(Stream())
    GPU.queue.append(lambda: None)  # the kernel after the event: still running
    first.event.place = len(GPU.queue)
    pool = cuda._THREAD.pending[None]
    pool.append((first.word, first.word_np, first.event))  # as if freed before the kernel finished
    first._pool = []
    second = cuda._PendingCheck(None)
    assert second.word is not first.word
    GPU.run_to(len(GPU.queue))
    third = cuda._PendingCheck(None)
    assert third.word is first.word


def test_threads_get_their_own_error_word(host):
    words, both = {}, threading.Barrier(2)

    def take(name):
        words[name] = cuda._error_word()[0]  # the tensor: both words stay alive while compared
        both.wait()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert words[0].data_ptr() != words[1].data_ptr() and cuda._error_word() is cuda._error_word()


def test_one_signature_for_every_cache():
    """Kind, shape, dtype and device; hashable for torch tensors and numpy arrays alike."""
    t, a = torch.zeros(2, 3), np.zeros((2, 3), np.float32)
    assert cuda._signature((t, None)) != cuda._signature((a, None))
    assert cuda._signature((t, None)) == cuda._signature((torch.ones(2, 3), None))
    assert cuda._signature((t,)) != cuda._signature((t.double(),))
    hash(cuda._signature((t, a, None)))


def _fake_cupy(monkeypatch, launch):
    """sys.modules' cupy replaced by the two modules a Launcher imports; ``launch`` stands in for cuLaunchKernel."""
    class CUDADriverError(RuntimeError):
        pass

    driver = SimpleNamespace(CUDADriverError=CUDADriverError, launchKernel=launch)
    runtime = SimpleNamespace(freed=[], free=lambda ptr: runtime.freed.append(ptr))
    cuda_module = SimpleNamespace(driver=driver, runtime=runtime)
    monkeypatch.setitem(sys.modules, "cupy", SimpleNamespace(cuda=cuda_module))
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda_module)
    return driver, runtime


def test_launcher_hands_the_driver_one_slot_per_argument(monkeypatch):
    """kernelParams points at one slot per argument holding its value: 8-byte pointers, 4-byte int32s."""
    kinds = "PiiPPiP"
    seen = []

    def launch(f, gx, gy, gz, bx, by, bz, smem, stream, params, extra):
        addresses = (ctypes.c_void_p * len(kinds)).from_address(params)
        assert all(a % (8 if k == "P" else 4) == 0 for a, k in zip(addresses, kinds))  # aligned as in C
        values = [(ctypes.c_uint64 if k == "P" else ctypes.c_int32).from_address(a).value
                  for a, k in zip(addresses, kinds)]
        seen.append((f, (gx, gy, gz), (bx, by, bz), smem, stream, values, extra))

    _fake_cupy(monkeypatch, launch)
    launcher = cuda.Launcher(SimpleNamespace(ptr=1234), kinds)
    args = (2**63 + 5, -7, 2**31 - 1, 0, 0x7F00_0000_1000, 3, 16)
    launcher((5, 2), (256,), args, shared_mem=4096, stream=99)
    launcher((1,), (32, 2, 1), (1, 2, 3, 4, 5, 6, 7))
    assert seen[0] == (1234, (5, 2, 1), (256, 1, 1), 4096, 99, list(args), 0)
    assert seen[1][1:6] == ((1, 1, 1), (32, 2, 1), 0, 0, [1, 2, 3, 4, 5, 6, 7])  # the slots are rewritten
    with pytest.raises(ValueError, match="6 arguments for a kernel of 7 parameters"):
        launcher((1,), (32,), (1, 2, 3, 4, 5, 6))
    with pytest.raises(struct.error):  # an int32 slot cannot hold 2**31: an error, not a wrapped value
        launcher((1,), (32,), (1, 2**31, 3, 4, 5, 6, 7))


def test_launcher_makes_a_context_current_in_a_fresh_thread(monkeypatch):
    """A thread with no current context (CUDA_ERROR_INVALID_CONTEXT) gets the device's, then the launch runs."""
    tries = []

    def launch(*args):
        tries.append(args)
        if len(tries) == 1:
            raise driver.CUDADriverError("CUDA_ERROR_INVALID_CONTEXT: invalid device context")

    driver, runtime = _fake_cupy(monkeypatch, launch)
    cuda.Launcher(SimpleNamespace(ptr=1), "Pi")((1,), (32,), (8, 9))
    assert len(tries) == 2 and runtime.freed == [0]

    def fail(*args):
        raise driver.CUDADriverError("CUDA_ERROR_INVALID_VALUE: invalid argument")

    driver.launchKernel = fail
    with pytest.raises(driver.CUDADriverError, match="INVALID_VALUE"):  # any other error is the caller's
        cuda.Launcher(SimpleNamespace(ptr=1), "Pi")((1,), (32,), (8, 9))
    assert runtime.freed == [0]
