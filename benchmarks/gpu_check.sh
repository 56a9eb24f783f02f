#!/usr/bin/env bash
# The GPU check, one call, under 8 minutes on one GPU: the CUDA tests (every gradient mode on
# CUDA against the CPU in float64, NVML lookup, allocator peaks), the small `gpu-check` suite on
# CUDA with NVML (its synthetic runs again with --executor ray when Ray is installed), and the
# engine's conv-field case (N = 400, alpha = 0.5: direct vs adjoint,
# fast vs stepwise history); writes reports/gpu-check/README.md naming the device.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]     # OUT_DIR: where logs and records go (default: a
#                                              # temporary folder); the report goes to reports/
#
# Needs a python with torch (CUDA), pytest and fdebench's dependencies; runs from the source tree.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device" >&2
    exit 2
fi
status=0
echo "== CUDA tests"
"$PY" -m pytest tests -m cuda -q -rs -p no:cacheprovider 2>&1 | tee "$out/tests.log" || status=1
echo "== the gpu-check suite on CUDA"
"$PY" -m fdebench.cli run gpu-check --device cuda --quiet --results-dir "$out/results" \
    --reports-dir "$out/reports" || status=1
ray_args=()
if "$PY" -c "import ray" 2>/dev/null; then
    echo "== its synthetic runs on CUDA with --executor ray"
    "$PY" -m fdebench.cli run gpu-check --device cuda --executor ray --only "synthetic*" --quiet \
        --results-dir "$out/ray-results" --reports-dir "$out/ray-reports" || status=1
    ray_args=(--ray-results "$out/ray-results/gpu-check")
else
    echo "== no ray here (pip install 'fdebench[ray]'): the --executor ray step is skipped"
fi
echo "== engine case and report"
"$PY" -m benchmarks.gpu_check --tests-log "$out/tests.log" --results "$out/results/gpu-check" \
    "${ray_args[@]}" --out reports/gpu-check/README.md || status=1
exit $status
