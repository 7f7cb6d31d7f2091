#!/usr/bin/env bash
# Lesson 8's SSD kernels on the H200 in one go (from the repository root; results under $OUT, default ./out):
#   1. GPU tests (tests/gpu/test_ssd_cuda.py, tests/gpu/test_ssd_gpu.py)          ≤ 150 s
#   2. benchmark beside the official Triton kernel (benchmarks/ssd_gpu.py)         ≤ 200 s
#      (the official sources in benchmarks/official/triton, git-ignored, carried by the caller)
#   3. compute-sanitizer memcheck on the small kernel tests, racecheck on one      ≤ 100 s + 40 s
# Each step prints the tail of its log; the script goes on after a failure and exits non-zero if any failed.
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python}
status=0
step() {  # step NAME TIMEOUT COMMAND...: run, log to $OUT/NAME.log, show the tail
    local name=$1 limit=$2; shift 2
    echo "=== $name (timeout ${limit}s): $*"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "=== $name: exit $rc"
    [ $rc -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
step tests 150 $PY -m pytest -q -p no:cacheprovider -rfE tests/gpu/test_ssd_cuda.py tests/gpu/test_ssd_gpu.py
step bench 200 $PY benchmarks/ssd_gpu.py --official benchmarks/official/triton --out "$OUT/ssd_gpu_h200.json"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n 1)
if [ -n "$SAN" ]; then
    step memcheck 100 "$SAN" --tool memcheck --error-exitcode 1 --print-limit 20 \
        $PY -m pytest -q -x -p no:cacheprovider tests/gpu/test_ssd_cuda.py \
        -k "small and not dispatch and not gradients and not bad_inputs"
    step racecheck 40 "$SAN" --tool racecheck --error-exitcode 1 --print-limit 20 \
        $PY -m pytest -q -x -p no:cacheprovider tests/gpu/test_ssd_cuda.py -k "small_chunk_sizes and 64"
else
    echo "=== compute-sanitizer not found: memcheck skipped"; status=1
fi
[ -f "$OUT/ssd_gpu_h200.json" ] && cp "$OUT/ssd_gpu_h200.json" benchmarks/results/ssd_gpu_h200.json
echo "=== done: exit $status (logs and json in $OUT)"
exit $status
