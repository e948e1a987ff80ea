#!/usr/bin/env bash
# Sets pointea up on a fresh machine: the system libraries open3d needs, a virtual
# environment in .venv at the repository root, the pinned packages and pointea itself
# (editable). Idempotent: a second run with nothing to do returns in seconds.
#
#   bash scripts/setup.sh            # CPU machine: installs torch 2.13.0 (CPU build)
#   POINTEA_TORCH=skip bash ...      # keep whatever torch the venv already has
#
# On a machine whose system Python already has torch (a GPU box with a CUDA build),
# the venv is created with --system-site-packages and that torch is used as it is.
#
# torch-cluster: first PyG's prebuilt wheel for the installed torch (data.pyg.org, a 5 s
# timeout; unreachable on machines that only see PyPI), else a source build with
# setuptools' parallel build_ext. Switches for timing the build:
#   POINTEA_BUILD_JOBS=N      compilers at once (default: nproc; 1 = the old serial build)
#   POINTEA_BUILD_CFLAGS=...  extra compiler flags (default: -g0, no debug information)
#   POINTEA_BUILD_PCH=0       no precompiled torch header (scripts/pch_cc.sh; GCC only)
#   POINTEA_PYG_WHEELS=0      skip the prebuilt-wheel attempt
#   PIP_NO_CACHE_DIR=1        ignore pip's cached wheel (a real cold build)
#   POINTEA_CUDA_REBUILD=0    never rebuild torch-cluster for CUDA (see below)
# With a CUDA torch, the script checks that torch-cluster has CUDA kernels
# (scripts/setup_check.py) and rebuilds it with FORCE_CUDA=1 when nvcc exists; without
# nvcc pointea runs its pure-torch FPS/kNN on the GPU and the script says so.
#
# Offline (PIP_NO_INDEX=1, optionally PIP_FIND_LINKS=<wheels folder>): apt is attempted
# and a failure only warns; the pip/setuptools upgrade, packages the image already has
# (torch-geometric of any 2.x version), and packages that cannot be found are skipped with
# a warning; a torch-cluster that cannot be built leaves pointea on its pure-torch
# FPS/kNN. A PYTHON that is itself a virtual environment (an image's /opt/.../.venv) is
# reached from .venv through a .pth file, so its torch stays the one in use.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
python="${PYTHON:-python3}"
torch_pin="torch==2.13.0"
apt_packages=(libusb-1.0-0 libgl1 libegl1 libgomp1 libvulkan1 mesa-vulkan-drivers)
pip_packages=(
  "numpy>=1.26,<3"
  "torch-geometric==2.8.1"
  "h5py>=3.10,<4"
  "open3d==0.20.0"
  "safetensors>=0.4,<1"
  "tqdm>=4.66,<5"
  "matplotlib>=3.8,<4"
  "trimesh>=4.4,<6"
  "plyfile>=1.0,<2"
  "plotly>=5.22,<8"
  "tensorboard>=2.16,<3"
  "pytest>=8,<10"
  "hypothesis>=6.100,<7"
  "nbclient>=0.10,<1"
  "nbformat>=5.10,<6"
  "ipykernel>=6.29,<8"
  "ruff>=0.6,<1"
)

log() { printf '[setup] %s\n' "$*"; }
offline=0
case "${PIP_NO_INDEX:-}" in 1|true|yes|on) offline=1 ;; esac
# offline, a torch-cluster that cannot be built is not fatal (pure-torch FPS/kNN)
required="torch, torch_cluster, torch_geometric, h5py, pointea"
[ "$offline" = 1 ] && required="torch, torch_geometric, h5py, pointea"

# Everything that decides what gets installed; a change to any of it re-runs the install.
fingerprint=$(cat scripts/setup.sh pyproject.toml | sha256sum | cut -d' ' -f1)
stamp="$venv/.pointea-setup"

missing_apt=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$p")
  done
fi

if [ ${#missing_apt[@]} -eq 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ] \
  && "$venv/bin/python" -c "import $required" 2>/dev/null; then
  log "up to date ($venv)"
  exit 0
fi

# 1. System libraries for open3d (headless rendering through Mesa's llvmpipe).
if [ ${#missing_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing system libraries: ${missing_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends \
    "${missing_apt[@]}" >/dev/null; }; then
    [ "$offline" = 1 ] || { log "apt-get failed" >&2; exit 1; }
    log "WARNING: apt-get failed (offline?): open3d may not render; pointea falls back to its numpy renderer"
  fi
fi

# 2. The virtual environment.
if [ ! -x "$venv/bin/python" ]; then
  if "$python" -c "import torch" 2>/dev/null; then
    log "$python has torch $("$python" -c 'import torch; print(torch.__version__)'): reusing it"
    "$python" -m venv --system-site-packages "$venv"
    # a venv's own packages are not its base's system site: reach them through a .pth file
    "$python" -c "import sys, site; sys.exit(0 if sys.prefix != sys.base_prefix else 1)" \
      && "$python" -c "import site; print('\n'.join(site.getsitepackages()))" \
        >"$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/pointea-base-venv.pth"
  else
    "$python" -m venv "$venv"
  fi
fi
# pip's notes about absent local index folders are noise: filter them out.
pip_install() {
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
if [ "$offline" = 1 ]; then
  pip_install --upgrade "pip>=23" "setuptools>=77" wheel 2>/dev/null || log "offline: pip and setuptools as they are"
else
  pip_install --upgrade "pip>=23" "setuptools>=77" wheel
fi

# 3. torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
if "$venv/bin/python" -c "import torch" 2>/dev/null; then
  log "torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') already present"
elif [ "${POINTEA_TORCH:-}" = "skip" ]; then
  log "POINTEA_TORCH=skip but no torch in $venv" >&2; exit 1
else
  log "installing $torch_pin"
  pip_install "$torch_pin"
fi

# 4. torch-cluster: a prebuilt wheel where PyG's index is reachable, else built from
#    source against the installed torch (pip caches the wheel: later set-ups take seconds).
setup_check() {  # imports nothing of pointea, which is not installed yet
  "$venv/bin/python" -W ignore "$root/scripts/setup_check.py" "$@"
}
build_torch_cluster() {  # extra pip arguments: "$@"
  local jobs="${POINTEA_BUILD_JOBS:-$(nproc)}" cfg
  cfg="$(mktemp)"
  # setuptools builds torch-cluster's nine extensions one after another unless told
  # `parallel` (its setup.py turns ninja off); DIST_EXTRA_CONFIG passes that in.
  printf '[build_ext]\nparallel = %s\n' "$jobs" >"$cfg"
  # with GCC, torch's headers are parsed once into a precompiled header (scripts/pch_cc.sh)
  local cc_env=() pch="" cc cxx
  if [ "${POINTEA_BUILD_PCH:-1}" != "0" ] && [ -z "${CC:-}${CXX:-}" ] && [[ "$root" != *" "* ]] \
    && command -v flock >/dev/null \
    && "$venv/bin/python" -c "import sysconfig; cc = sysconfig.get_config_var('CC') or ''; \
import subprocess, sys; out = subprocess.run(cc.split() + ['--version'], capture_output=True, text=True).stdout; \
sys.exit(0 if 'Free Software Foundation' in out else 1)" 2>/dev/null; then
    pch="$(mktemp -d)"
    read -r cc cxx < <("$venv/bin/python" -c "import sysconfig as s; \
print(s.get_config_var('CC').split()[0], (s.get_config_var('CXX') or 'g++').split()[0])")
    # setuptools compiles C++ with CXX (and CXXFLAGS) where it has one, older ones with CC
    cc_env=(CC="$root/scripts/pch_cc.sh $cc" CXX="$root/scripts/pch_cc.sh $cxx" POINTEA_PCH_DIR="$pch"
      POINTEA_PCH_CXX="$cxx")
  fi
  log "building torch-cluster from source ($jobs compilers at once${pch:+, torch headers precompiled}; several minutes)"
  # setuptools' CFLAGS / CXXFLAGS replace Python's compile flags (-DNDEBUG -O3 ...), so the
  # extra flags go after Python's own; C++ files are compiled with CXXFLAGS
  local rc=0 flags
  flags="$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_config_var('CFLAGS') or '')")"
  flags="$flags ${POINTEA_BUILD_CFLAGS--g0}"
  env "${cc_env[@]}" DIST_EXTRA_CONFIG="$cfg" MAX_JOBS="$jobs" \
    CFLAGS="$flags ${CFLAGS:-}" CXXFLAGS="$flags ${CXXFLAGS:-}" \
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
    "$@" "$cluster_pin" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) || rc=$?
  rm -rf "$cfg" ${pch:+"$pch"}
  return "$rc"
}
cluster_pin="torch-cluster==1.6.3"
if ! "$venv/bin/python" -c "import torch_cluster" 2>/dev/null; then
  wheel_index="$(setup_check --wheel-index)"
  # a direct 5 s look first: where the host is unreachable this fails in about a second
  if [ "${POINTEA_PYG_WHEELS:-1}" != "0" ] \
    && "$venv/bin/python" -c "import sys, urllib.request; \
urllib.request.urlopen(sys.argv[1], timeout=5).close()" "$wheel_index" 2>/dev/null \
    && pip_install --only-binary torch-cluster --find-links "$wheel_index" \
      --timeout 5 --retries 0 "$cluster_pin" 2>/dev/null; then
    log "torch-cluster: prebuilt wheel from $wheel_index"
  else
    log "no prebuilt torch-cluster wheel reachable ($wheel_index)"
    # torch-cluster's setup.py compiles CUDA whenever nvcc exists (only FORCE_ONLY_CPU
    # stops it), and nvcc gets CC as -ccbin, where the compiler wrapper cannot go
    if ! (
      [ "${POINTEA_CUDA_REBUILD:-1}" = "0" ] && export FORCE_ONLY_CPU=1
      command -v nvcc >/dev/null 2>&1 && export POINTEA_BUILD_PCH=0
      build_torch_cluster
    ); then
      [ "$offline" = 1 ] || { log "the torch-cluster build failed" >&2; exit 1; }
      log "WARNING: offline and torch-cluster did not build: pointea uses its pure-torch FPS/kNN"
    fi
  fi
fi
verdict="$(setup_check)"
case "$verdict" in
  rebuild*)
    log "${verdict#rebuild }"
    if [ "${POINTEA_CUDA_REBUILD:-1}" = "0" ]; then
      log "POINTEA_CUDA_REBUILD=0: not rebuilding; pointea uses its pure-torch FPS/kNN on CUDA"
    else
      # plain compilers: torch hands CC to nvcc as -ccbin, where a wrapper with a space breaks
      FORCE_CUDA=1 FORCE_ONLY_CUDA=1 POINTEA_BUILD_PCH=0 build_torch_cluster --no-cache-dir --force-reinstall --no-deps \
        || log "the CUDA rebuild of torch-cluster failed: pointea will use its pure-torch FPS/kNN on CUDA"
      log "torch-cluster: $(setup_check)"
    fi
    ;;
  ok*) log "torch-cluster: ${verdict#ok }" ;;
  fallback*) log "WARNING: ${verdict#fallback }" ;;
  missing*)
    [ "$offline" = 1 ] || { log "torch-cluster does not load: $verdict" >&2; exit 1; }
    log "torch-cluster: not installed (pure-torch FPS/kNN)" ;;
esac

# 5. The rest, then pointea itself (editable, dependencies already in place).
log "installing python packages"
if [ "$offline" = 1 ]; then
  for package in "${pip_packages[@]}"; do
    if [[ "$package" == torch-geometric* ]] && "$venv/bin/python" -c "import torch_geometric" 2>/dev/null; then
      continue  # the image's torch-geometric, whatever its 2.x version
    fi
    pip_install "$package" 2>/dev/null || log "WARNING: offline, not installed: $package"
  done
else
  pip_install "${pip_packages[@]}"
fi
if ! pip_install --no-build-isolation --no-deps -e .; then
  [ "$offline" = 1 ] || { log "installing pointea failed" >&2; exit 1; }
  # an image's old setuptools cannot read pyproject.toml's license: a path entry instead
  echo "$root" >"$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/pointea-src.pth"
  log "WARNING: offline, pointea is importable but its console scripts are not installed (python -m pointea.cli.train ...)"
fi
"$venv/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 \
  || [ "$offline" = 1 ] || { log "ipykernel install failed" >&2; exit 1; }

"$venv/bin/python" -c "import $required" || { log "import check failed" >&2; exit 1; }
echo "$fingerprint" >"$stamp"
log "done: $venv (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
