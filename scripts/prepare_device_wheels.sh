#!/usr/bin/env bash
# Fills a folder with what scripts/device_check.sh installs on a machine without network
# access: torch-cluster's source (built there for CUDA) and the pure-Python wheels of
# trimesh and plyfile. Run it where a package index is reachable, then copy the folder
# (a few MiB) next to the checkout on the GPU machine.
#
#   bash scripts/prepare_device_wheels.sh [FOLDER]     # default: wheels/ in the checkout
#
# Only these files, without their dependencies (pip download --no-deps): the GPU machine
# already has torch, numpy and the rest. PYTHON (default python3) runs pip; it must import
# torch, since pip reads torch-cluster's metadata by running its setup.py.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
folder="${1:-$root/wheels}"
python="${PYTHON:-python3}"
mkdir -p "$folder"

# torch-cluster: the source distribution, compiled on the GPU machine against its torch
"$python" -m pip download --no-deps --no-binary=:all: --no-build-isolation -d "$folder" \
  "torch-cluster==1.6.3"
# pure-Python packages for mesh and PLY files
"$python" -m pip download --no-deps --only-binary=:all: -d "$folder" \
  "trimesh>=4.4,<6" "plyfile>=1.0,<2"

ls -l "$folder"
du -sh "$folder"
