"""Launching a compiled kernel with little host work: its arguments packed into one buffer per call.

Why (lesson 7, "the call as users make it"): v2's kernels take 21 and 28 arguments. CuPy's
``Function.__call__`` converts every argument into a C value on every call, which on the H200's
host took longer than the forward kernel itself at small sizes. A :class:`Launcher` lays the
argument list out once: a buffer with one slot per argument (8 bytes for a pointer, 4 for an
int) and the array of the slots' addresses that ``cuLaunchKernel`` takes as ``kernelParams``.
A launch is then one ``struct.pack_into`` and one driver call; the driver copies the values
before it returns, so the buffer is free again at once.
"""

import ctypes
import struct
import threading

_SLOTS = {"P": "Q", "i": "i"}  # parameter kinds: a pointer (an address, 0 for none) or an int32


class Launcher:
    """A compiled kernel (a CuPy ``RawKernel`` or ``Function``) and the kinds of its parameters, e.g. ``"PPi"``.

    Called like the kernel: ``launcher(grid, block, args, shared_mem=0, stream=0)`` with ``args``
    Python ints (device addresses for pointers, 0 for NULL) and ``stream`` a raw CUDA stream handle.
    One lock per launcher: two threads never pack into the buffer at once.
    """

    def __init__(self, function, kinds):
        from cupy.cuda import driver, runtime

        self.function, self.kinds = function, kinds
        self._function_ptr = getattr(function, "kernel", function).ptr  # a RawKernel's CUfunction on this device
        fmt, offsets, size = "=", [], 0
        for kind in kinds:
            width = struct.calcsize(_SLOTS[kind])
            pad = -size % width  # each slot aligned to its width, as in a C struct
            fmt += f"{pad}x{_SLOTS[kind]}"
            offsets.append(size + pad)
            size += pad + width
        self._pack = struct.Struct(fmt).pack_into
        self._buffer = ctypes.create_string_buffer(max(size, 1))
        base = ctypes.addressof(self._buffer)
        self._params = (ctypes.c_void_p * len(kinds))(*(base + offset for offset in offsets))
        self._params_address = ctypes.addressof(self._params)
        self._driver, self._runtime = driver, runtime
        self._lock = threading.Lock()

    def __call__(self, grid, block, args, shared_mem=0, stream=0):
        if len(args) != len(self.kinds):
            raise ValueError(f"{len(args)} arguments for a kernel of {len(self.kinds)} parameters")
        gx, gy, gz = (*grid, 1, 1)[:3]
        bx, by, bz = (*block, 1, 1)[:3]
        with self._lock:
            self._pack(self._buffer, 0, *args)
            try:
                self._driver.launchKernel(self._function_ptr, gx, gy, gz, bx, by, bz, shared_mem, stream,
                                          self._params_address, 0)
            except self._driver.CUDADriverError as err:
                if "CUDA_ERROR_INVALID_CONTEXT" not in str(err):
                    raise
                # a thread that has made no CUDA runtime call yet has no current context: make the
                # device's primary context current (as any runtime call does) and launch again
                self._runtime.free(0)
                self._driver.launchKernel(self._function_ptr, gx, gy, gz, bx, by, bz, shared_mem, stream,
                                          self._params_address, 0)
