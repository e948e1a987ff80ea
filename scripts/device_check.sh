#!/usr/bin/env bash
# One prepared check of pointea on a GPU machine without network access (under 8 minutes).
#
#   OUT=/path/to/results bash scripts/device_check.sh      # default OUT: ./device-out
#
# Nothing is installed into the machine's Python and nothing is downloaded:
#   PYTHON           the python to use (default python3); it must hold torch
#   PYTHONPATH       the checkout is put first, so pointea is imported from here
#   POINTEA_WHEELS   a folder of wheels and torch-cluster's sdist (default: wheels/ in
#                    the checkout, filled by scripts/prepare_device_wheels.sh); its wheels
#                    are installed with --no-index --no-deps into POINTEA_SITE (default
#                    /tmp/pointea-site), a folder added to PYTHONPATH after the checkout,
#                    so the machine's torch and torch-geometric stay the ones in use
#   POINTEA_DEVICE_BUDGET  seconds for the whole check (default 450)
#   POINTEA_DEVICE_TESTS   the test files of the test stage (default below)
#
# With CUDA and nvcc, torch-cluster is built for CUDA in the background (FORCE_ONLY_CUDA=1,
# TORCH_CUDA_ARCH_LIST, default 9.0, plain gcc, MAX_JOBS parallel compilers) from the
# sdist in POINTEA_WHEELS, unless that folder already holds a torch_cluster wheel (for
# example the one an earlier run wrote to OUT). The built wheel is copied to OUT. Until
# it is ready (or if it never is) pointea's pure-torch FPS/kNN run.
#
# Stages, each its own process under its own time limit, each appending to OUT as it goes:
#   env          versions, the GPU, which sampling kernels run
#   ceilings     bf16 8192^3 matrix product (CUDA events) and device copy bandwidth
#   correctness  FPS, kNN, an external-attention layer and a model forward/backward on
#                the device against the CPU in float64
#   speed        pct_cls training at 32 x 1024 in bf16, clouds/s, pure-torch sampling
#   tests        a fast part of the test suite on the device (POINTEA_TEST_DEVICE)
#   cluster      when the torch-cluster build finished: the speed stage with its kernels
# Without CUDA the stages that need it say "skipped: no CUDA" (and run their code on the
# CPU at a tiny size where they can); the others run on the CPU.
#
# OUT receives at most 5 files: summary.txt (the table printed last), results.jsonl (every
# measurement), check.log (every stage's output), build.log and torch_cluster-*.whl.
# Exit status: 0 when no stage failed or was left out for lack of time, 1 otherwise.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/device-out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
wheels="${POINTEA_WHEELS:-$root/wheels}"
site="${POINTEA_SITE:-${TMPDIR:-/tmp}/pointea-site}"
budget="${POINTEA_DEVICE_BUDGET:-450}"
tests="${POINTEA_DEVICE_TESTS:-tests/test_ops.py tests/nn}"
began=$(date +%s)

export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$root:$site${PYTHONPATH:+:$PYTHONPATH}"
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"

results="$out/results.jsonl"
log="$out/check.log"
summary="$out/summary.txt"
rows="$(mktemp)"
: >"$results"
: >"$log"
failed=0
build_pid=""

left() { echo $((budget - ($(date +%s) - began))); }
say() { printf '[device_check] %s\n' "$*" | tee -a "$log"; }

# row NAME SECONDS STATUS TEXT: one line of the table (kept in a scratch file)
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$rows"; }

print_table() {
  {
    printf '\npointea device check (%s s of %s s; results in %s)\n\n' \
      "$(($(date +%s) - began))" "$budget" "$out"
    printf '| %-11s | %5s | %-7s | %s\n' stage "s" status result
    printf '|%s|%s|%s|%s\n' "-------------" "-------" "---------" "--------"
    while IFS=$'\t' read -r name secs status text; do
      printf '| %-11s | %5s | %-7s | %s\n' "$name" "$secs" "$status" "$text"
    done <"$rows"
  } >"$summary"
  cat "$summary"
}

finish() {
  if [ -n "$build_pid" ] && kill -0 "$build_pid" 2>/dev/null; then
    kill -- "$build_pid" 2>/dev/null
  fi
  print_table
  rm -f "$rows"
}
trap finish EXIT

# stage NAME LIMIT CMD...: run CMD under min(LIMIT, time left - reserve); the table takes
# the last "summary: ..." line it printed (or its exit status)
stage() {
  local name="$1" limit="$2" start status text avail
  shift 2
  avail=$(($(left) - 15))
  if [ "$avail" -lt 10 ]; then
    row "$name" 0 skipped "time budget of $budget s spent"
    failed=1
    return 0
  fi
  [ "$limit" -gt "$avail" ] && limit="$avail"
  start=$(date +%s)
  say "--- $name (limit $limit s)"
  local before
  before=$(wc -l <"$log")
  timeout --kill-after=5 "$limit" "$@" >>"$log" 2>&1
  status=$?
  text="$(tail -n +$((before + 1)) "$log" | grep '^summary: ' | tail -n 1 | cut -c10-)"
  # without a summary line: the last line of the output (pytest's counts)
  [ -n "$text" ] || text="$(tail -n +$((before + 1)) "$log" | grep -v '^ *$' | tail -n 1 | cut -c1-160)"
  local secs=$(($(date +%s) - start)) verdict=ok
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    verdict=FAILED text="stopped at its $limit s limit${text:+; $text}"
  elif [ "$status" -ne 0 ]; then
    verdict=FAILED text="${text:-exit status $status (see check.log)}"
  elif [[ "$text" == skipped* ]]; then
    verdict=skipped
  fi
  [ "$verdict" = FAILED ] && failed=1
  row "$name" "$secs" "$verdict" "${text:-done}"
  return 0
}

probe=("$python" scripts/device_probe.py --results "$results")

cuda=0
if timeout 60 "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  >>"$log" 2>&1; then
  cuda=1
fi
say "python: $python; CUDA: $([ $cuda -eq 1 ] && echo yes || echo no); budget: $budget s"

# --- optional wheels from the local folder (never from an index) -------------------------
wheel_note="no wheels folder ($wheels)"
if [ -d "$wheels" ]; then
  mkdir -p "$site"
  shopt -s nullglob
  pure=()
  for w in "$wheels"/*.whl; do
    case "$(basename "$w")" in
      torch_cluster-*) ;;  # handled below, only when it fits this torch
      *) pure+=("$w") ;;
    esac
  done
  if [ ${#pure[@]} -gt 0 ]; then
    if timeout 60 "$python" -m pip install -q --no-index --no-deps --no-compile --upgrade \
      --target "$site" "${pure[@]}" >>"$log" 2>&1; then
      wheel_note="installed ${#pure[@]} wheel(s) into $site"
    else
      wheel_note="FAILED to install the wheels of $wheels (see check.log)"
      failed=1
    fi
  else
    wheel_note="no wheels in $wheels"
  fi
  shopt -u nullglob
fi
say "wheels: $wheel_note"

# --- torch-cluster for CUDA, in the background ---------------------------------------------
build_note="not built (no CUDA)"
build_dir="${TMPDIR:-/tmp}/pointea-tc-build"
if [ $cuda -eq 1 ]; then
  built=$(ls "$wheels"/torch_cluster-*.whl 2>/dev/null | head -n 1)
  sdist=$(ls "$wheels"/torch_cluster-*.tar.gz 2>/dev/null | head -n 1)
  if [ -n "$built" ]; then
    build_note="prebuilt wheel $(basename "$built")"
    mkdir -p "$build_dir" && rm -f "$build_dir"/*.whl && cp "$built" "$build_dir/"
  elif [ -z "$sdist" ]; then
    build_note="not built (no torch_cluster sdist in $wheels)"
  elif ! command -v nvcc >/dev/null 2>&1; then
    build_note="not built (no nvcc)"
  else
    build_note="building from $(basename "$sdist") (build.log)"
    rm -rf "$build_dir" && mkdir -p "$build_dir"
    # leave cores to the stages that run meanwhile (their Python launches the kernels)
    jobs=$(($(nproc) > 8 ? $(nproc) - 4 : ($(nproc) > 2 ? $(nproc) - 1 : 1)))
    FORCE_ONLY_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="$jobs" \
      CC=gcc CXX=g++ CUDAHOSTCXX=g++ \
      timeout --kill-after=5 $(($(left) - 40)) \
      "$python" -m pip wheel -v --no-index --no-deps --no-build-isolation \
      -w "$build_dir" "$sdist" >"$out/build.log" 2>&1 &
    build_pid=$!
  fi
fi
say "torch-cluster: $build_note"

# --- the stages ------------------------------------------------------------------------------
small=()
[ $cuda -eq 1 ] || small=(--small)
stage env 40 "${probe[@]}" env
stage ceilings 60 "${probe[@]}" ceilings
stage correctness 90 "${probe[@]}" correctness "${small[@]}"
stage speed 90 "${probe[@]}" speed

# a fast part of the suite, on the device; tests comparing against torch_cluster need it
read -r -a test_paths <<<"$tests"
deselect=()
if ! timeout 60 "$python" -c "import torch_cluster" >/dev/null 2>&1; then
  deselect=(-k "not torch_cluster and not matches_cpu_reference and not ties_agree and not backend_env and not cuda_fps_coordinates")
fi
device=cpu
[ $cuda -eq 1 ] && device=cuda
POINTEA_TEST_DEVICE="$device" stage tests 120 "$python" -m pytest -q -p no:cacheprovider \
  -m "not slow" "${deselect[@]}" "${test_paths[@]}"
[ ${#deselect[@]} -gt 0 ] && [ -s "$rows" ] && sed -i '$ s/$/ (tests needing torch_cluster left out)/' "$rows"

# torch-cluster's kernels, when the build finished in time
if [ -n "$build_pid" ]; then
  while kill -0 "$build_pid" 2>/dev/null && [ "$(left)" -gt 45 ]; do sleep 2; done
  if kill -0 "$build_pid" 2>/dev/null; then
    kill -- "$build_pid" 2>/dev/null
    build_note="build not finished in time (build.log)"
  fi
  wait "$build_pid" 2>/dev/null
  build_pid=""
fi
tc_wheel=$(ls "$build_dir"/torch_cluster-*.whl 2>/dev/null | head -n 1)
if [ $cuda -eq 1 ] && [ -n "$tc_wheel" ]; then
  [ -f "$out/$(basename "$tc_wheel")" ] || cp "$tc_wheel" "$out/"
  if timeout 30 "$python" -m pip install -q --no-index --no-deps --no-compile --upgrade \
    --target "$site" "$tc_wheel" >>"$log" 2>&1; then
    stage cluster 60 "${probe[@]}" speed
  else
    row cluster 0 FAILED "could not install $(basename "$tc_wheel") (check.log)"
    failed=1
  fi
elif [ $cuda -eq 1 ]; then
  row cluster 0 skipped "torch-cluster $build_note"
else
  row cluster 0 skipped "skipped: no CUDA"
fi

say "done: $([ $failed -eq 0 ] && echo "no stage failed" || echo "some stages FAILED")"
exit "$failed"
