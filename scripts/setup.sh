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
  "pytest>=8,<10"
  "hypothesis>=6.100,<7"
  "nbclient>=0.10,<1"
  "nbformat>=5.10,<6"
  "ipykernel>=6.29,<8"
  "ruff>=0.6,<1"
)

log() { printf '[setup] %s\n' "$*"; }

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
  && "$venv/bin/python" -c "import torch, torch_cluster, torch_geometric, h5py, pointea" 2>/dev/null; then
  log "up to date ($venv)"
  exit 0
fi

# 1. System libraries for open3d (headless rendering through Mesa's llvmpipe).
if [ ${#missing_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing system libraries: ${missing_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi

# 2. The virtual environment.
if [ ! -x "$venv/bin/python" ]; then
  if "$python" -c "import torch" 2>/dev/null; then
    log "system Python has torch $("$python" -c 'import torch; print(torch.__version__)'): reusing it"
    "$python" -m venv --system-site-packages "$venv"
  else
    "$python" -m venv "$venv"
  fi
fi
# pip's notes about this machine's absent local index folders are noise: filter them out.
pip_install() {
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip_install --upgrade "pip>=23" "setuptools>=77" wheel

# 3. torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
if "$venv/bin/python" -c "import torch" 2>/dev/null; then
  log "torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') already present"
elif [ "${POINTEA_TORCH:-}" = "skip" ]; then
  log "POINTEA_TORCH=skip but no torch in $venv" >&2; exit 1
else
  log "installing $torch_pin"
  pip_install "$torch_pin"
fi

# 4. torch-cluster is source-only: build it against the installed torch (~6 min once;
#    pip caches the wheel, so later set-ups on this machine take seconds).
if ! "$venv/bin/python" -c "import torch_cluster" 2>/dev/null; then
  log "building torch-cluster (several minutes the first time)"
  MAX_JOBS="${MAX_JOBS:-$(nproc)}" pip_install --no-build-isolation "torch-cluster==1.6.3"
fi

# 5. The rest, then pointea itself (editable, dependencies already in place).
log "installing python packages"
pip_install "${pip_packages[@]}"
pip_install --no-build-isolation --no-deps -e .
"$venv/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null

"$venv/bin/python" -c "import torch, torch_cluster, torch_geometric, h5py, pointea" \
  || { log "import check failed" >&2; exit 1; }
echo "$fingerprint" >"$stamp"
log "done: $venv (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
