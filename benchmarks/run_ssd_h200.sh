#!/usr/bin/env bash
# Lesson 8's SSD kernels on the H200 (from the repository root; results under $OUT, default ./out).
# Steps (give names as arguments to run only some; default: tests bench-full memcheck racecheck):
#   tests      GPU tests (tests/gpu/test_ssd_cuda.py, tests/gpu/test_ssd_gpu.py)                   ≤ 150 s
#   bench-full the table beside the official Triton kernel (benchmarks/ssd_gpu.py), copied to
#              benchmarks/results/ssd_gpu_h200.json                                              ≤ 200 s
#   memcheck   compute-sanitizer memcheck on the small kernel tests                               ≤ 100 s
#   racecheck  compute-sanitizer racecheck on one small test (the double buffers)                 ≤ 40 s
#   prof       GPU µs per call of each kernel, first and smallest shape, Q 256/64, fp32/bf16     ≤ 50 s
#   ab         A/B (first shape, fp32): scan MIN_BLOCKS=0, state MIN_BLOCKS=3, SLICE=32, BUFFERS=3  ≤ 180 s
#   bench      benchmarks/ssd_gpu.py --quick beside the official kernel (smallest shape)          ≤ 45 s
# The official sources (benchmarks/official/triton, git-ignored) must be carried by the caller.
# Each step prints the tail of its log; the script goes on after a failure and exits non-zero if any failed.
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python}
STEPS=${*:-tests bench-full memcheck racecheck}
status=0
want() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
step() {  # step NAME TIMEOUT COMMAND...: run, log to $OUT/NAME.log, show the tail
    local name=$1 limit=$2; shift 2
    echo "=== $name (timeout ${limit}s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "=== $name: exit $rc after $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
git log --oneline -1 2>/dev/null || true
want tests && step tests 150 $PY -m pytest -q -p no:cacheprovider -rfE tests/gpu/test_ssd_cuda.py tests/gpu/test_ssd_gpu.py
want prof && step prof 50 $PY benchmarks/ssd_prof.py --shapes first,small --chunks 256,64 --dtypes fp32,bf16
want ab && step ab 180 bash -c "$PY benchmarks/ssd_prof.py --shapes first --dtypes fp32 --min-blocks scan=0; $PY benchmarks/ssd_prof.py --shapes first --dtypes fp32 --min-blocks state=3; $PY benchmarks/ssd_prof.py --shapes first --dtypes fp32 --slice 32; $PY benchmarks/ssd_prof.py --shapes first --dtypes fp32 --buffers 3"
want bench && step bench 45 $PY benchmarks/ssd_gpu.py --quick --repeats 10 --official benchmarks/official/triton \
    --out "$OUT/ssd_gpu_h200_quick.json"
want bench-full && step bench-full 200 $PY benchmarks/ssd_gpu.py --official benchmarks/official/triton \
    --out "$OUT/ssd_gpu_h200.json"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n 1)
if want memcheck || want racecheck; then
    if [ -z "$SAN" ]; then echo "=== compute-sanitizer not found: sanitizers skipped"; status=1; fi
fi
if [ -n "$SAN" ]; then
    want memcheck && step memcheck 100 "$SAN" --tool memcheck --error-exitcode 1 --print-limit 20 \
        $PY -m pytest -q -x -p no:cacheprovider tests/gpu/test_ssd_cuda.py \
        -k "small and not dispatch and not gradients and not bad_inputs"
    want racecheck && step racecheck 40 "$SAN" --tool racecheck --error-exitcode 1 --print-limit 20 \
        $PY -m pytest -q -x -p no:cacheprovider tests/gpu/test_ssd_cuda.py -k "small_chunk_sizes and 64"
fi
want bench-full && [ -f "$OUT/ssd_gpu_h200.json" ] && cp "$OUT/ssd_gpu_h200.json" benchmarks/results/ssd_gpu_h200.json
echo "=== done: exit $status (logs and json in $OUT)"
exit $status
