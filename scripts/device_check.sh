#!/usr/bin/env bash
# One prepared check of pointea on a machine with an NVIDIA GPU (under 8 minutes).
#
#   OUT=/path/to/results bash scripts/device_check.sh      # default OUT: ./device-out
#
# Steps, each logged to $OUT/<step>.log and timed in $OUT/summary.txt:
#   0. a GPU must be visible (nvidia-smi and torch.cuda), else one line and exit 2
#   1. set-up reusing the machine's CUDA torch: scripts/setup.sh with POINTEA_TORCH=skip
#      and a venv made with --system-site-packages from $PYTHON (default python3, which
#      must hold a CUDA torch). POINTEA_DEVICE_SETUP=skip uses $PYTHON as it is instead.
#      torch-cluster's CUDA rebuild (FORCE_CUDA=1, needs nvcc, several minutes) runs only
#      with POINTEA_CUDA_REBUILD=1; otherwise a CPU-only torch-cluster means pointea's
#      pure-torch FPS/kNN run on the GPU, and the probe below reports which ran.
#   2. the probe (scripts/device_probe.py -> $OUT/probe.json): FPS/kNN kernels on CUDA vs
#      CPU, a classifier training step in float32 / fp16 / bf16 autocast, synchronisations
#      per step (torch.cuda.set_sync_debug_mode) with and without input checks
#   3. the test suite on CUDA: POINTEA_TEST_DEVICE=cuda pytest -m "not slow"
#      (POINTEA_DEVICE_TESTS=all for the slow ones too) -> $OUT/pytest.log, junit xml
#   4. the model benchmark on the GPU: pointea-bench --device cuda --quick --sections
#      models,attention --output-dir $OUT/bench (skipped, with a note, if this
#      pointea-bench has no --device; sections it lacks are left out)
#   5. with two or more GPUs: a two-process NCCL all-reduce and one epoch of DDP training
#      (torchrun, synthetic data)
# Exit status: 0 when every step that ran passed, 1 otherwise, 2 without a GPU.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/device-out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
summary="$out/summary.txt"
: >"$summary"
failed=0

note() { printf '[device_check] %s\n' "$*" | tee -a "$summary"; }

# The whole check stays under POINTEA_DEVICE_BUDGET seconds (default 450, 7.5 min):
# every step's limit is cut to what is left, and a step with under 20 s left is skipped.
budget="${POINTEA_DEVICE_BUDGET:-450}"
began=$(date +%s)

# run NAME LIMIT_SECONDS CMD...: run a step with a time limit, log and time it
run() {
  local name="$1" limit="$2" start status left
  shift 2
  left=$((budget - ($(date +%s) - began)))
  if [ "$left" -lt 20 ]; then
    note "$name: SKIPPED (time budget of $budget s spent)"
    failed=1
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit="$left"
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  status=$?
  note "$name: exit $status in $(($(date +%s) - start)) s (log: $out/$name.log)"
  if [ "$status" -ne 0 ]; then
    failed=1
    tail -n 15 "$out/$name.log" | sed 's/^/    /' | tee -a "$summary"
  fi
  return "$status"
}

# 0. Is there a GPU at all?
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
fi
if [ "$gpus" -eq 0 ]; then
  echo "device_check: no NVIDIA GPU visible (nvidia-smi missing or lists none); nothing to check" >&2
  exit 2
fi
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "device_check: $gpus GPU(s) listed, but $python has no CUDA-enabled torch (set PYTHON)" >&2
  exit 2
fi
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
note "GPUs: $gpus; $("$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))')"

# 1. Set-up (reusing the CUDA torch).
if [ "${POINTEA_DEVICE_SETUP:-}" = "skip" ]; then
  py="$python"
  note "setup: skipped, using $py as it is"
else
  POINTEA_TORCH=skip PYTHON="$python" POINTEA_CUDA_REBUILD="${POINTEA_CUDA_REBUILD:-0}" \
    run setup 300 bash scripts/setup.sh || { note "setup failed: stopping"; exit 1; }
  py="$root/.venv/bin/python"
fi
note "sampling kernels: $("$py" -c 'import runpy,sys; sys.argv[1:]=[]; runpy.run_path("pointea/setup_check.py", run_name="__main__")' 2>&1 | tail -1)"

# 2. What only a GPU shows.
run probe 120 "$py" scripts/device_probe.py "$out/probe.json"

# 3. The tests on CUDA.
marks=(-m "not slow")
[ "${POINTEA_DEVICE_TESTS:-}" = "all" ] && marks=()
POINTEA_TEST_DEVICE=cuda run pytest 240 "$py" -m pytest -q -p no:cacheprovider "${marks[@]}" \
  --junitxml="$out/pytest.xml"
grep -E "passed|failed|error" "$out/pytest.log" | tail -n 1 | sed 's/^/    /' | tee -a "$summary"

# 4. The benchmark on the GPU.
bench=("$py" -m pointea.bench.run)
if "${bench[@]}" --help 2>/dev/null | grep -q -- "--device"; then
  wanted=(models attention)
  available=$("${bench[@]}" --list-sections 2>/dev/null || true)
  sections=()
  for s in "${wanted[@]}"; do
    if [ -z "$available" ] || grep -qx "$s" <<<"$available"; then sections+=("$s"); fi
  done
  args=(--device cuda --quick --threads "$(nproc)" --output-dir "$out/bench")
  if [ -n "$available" ] && [ ${#sections[@]} -gt 0 ]; then
    args+=(--sections "$(IFS=,; echo "${sections[*]}")")
  fi
  run bench 150 "${bench[@]}" "${args[@]}"
else
  note "bench: skipped (this pointea-bench has no --device option)"
fi

# 5. Two processes over NCCL.
if [ "$gpus" -ge 2 ]; then
  cat >"$out/nccl_check.py" <<'EOF'
import os

import torch
import torch.distributed as dist

dist.init_process_group("nccl")
rank = dist.get_rank()
torch.cuda.set_device(rank)
x = torch.full((4,), float(rank + 1), device="cuda")
dist.all_reduce(x)
assert torch.equal(x.cpu(), torch.full((4,), 3.0)), x
print(f"rank {rank}: all_reduce ok")
dist.destroy_process_group()
EOF
  run nccl 60 "$py" -m torch.distributed.run --standalone --nproc_per_node=2 "$out/nccl_check.py"
  run ddp 120 "$py" -m torch.distributed.run --standalone --nproc_per_node=2 \
    -m pointea.cli.train --synthetic --model pct_cls_tiny --epochs 1 --device cuda \
    --no-progress --data-root "$out/ddp-data" --output-dir "$out/ddp-run"
else
  note "nccl: skipped (one GPU)"
fi

note "done: $( [ "$failed" -eq 0 ] && echo "all steps passed" || echo "some steps FAILED" ); results in $out"
exit "$failed"
