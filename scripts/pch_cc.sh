#!/usr/bin/env bash
# A compiler wrapper for building torch-cluster from source with a precompiled header.
#
# Every one of torch-cluster's 17 C++ files includes <torch/torch.h> (all of ATen, the C++
# frontend and pybind11), and parsing it is about half of each file's compile time. This
# wrapper, set as CC and CXX by scripts/setup.sh (`CXX="scripts/pch_cc.sh g++"`), builds that header once into a GCC precompiled
# header (with the flags of the first compile, minus the per-extension module name, which
# the headers never use) and then compiles each file with `-include` of it. Where GCC
# finds the precompiled header unusable it says so (-Winvalid-pch) and parses the header
# as usual, so the result is the same either way. Links and non-C++ compiles pass through.
#
#   pch_cc.sh COMPILER ARGS...   COMPILER is the real one (gcc, g++, x86_64-linux-gnu-g++)
#   POINTEA_PCH_DIR              a folder for the header and its .gch (required; ~0.8 GB)
#   POINTEA_PCH_CXX              the compiler when none is named (default: c++)
set -uo pipefail
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  real=("$1")
  shift
else  # called as plain CXX, as torch does to check the compiler (`$CXX -v`)
  real=("${POINTEA_PCH_CXX:-c++}")
fi
dir="${POINTEA_PCH_DIR:?POINTEA_PCH_DIR must name a folder for the precompiled header}"

src=""
flags=()
skip=0
for arg in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$arg" in
    -o) skip=1 ;;
    -c | -DTORCH_EXTENSION_NAME=*) ;;
    *.cpp | *.cc | *.cxx) src="$arg" ;;
    *) flags+=("$arg") ;;
  esac
done
[ -n "$src" ] || exec "${real[@]}" "$@"

# the first compile builds the header; the others wait for it (a failure is remembered,
# and every file is then compiled the ordinary way)
(
  flock 9
  if [ ! -f "$dir/torch_all.h.gch" ] && [ ! -f "$dir/failed" ]; then
    printf '#include <Python.h>\n#include <torch/script.h>\n#include <torch/torch.h>\n' \
      >"$dir/torch_all.h"
    if "${real[@]}" "${flags[@]}" -x c++-header "$dir/torch_all.h" \
      -o "$dir/torch_all.h.gch.part"; then
      mv "$dir/torch_all.h.gch.part" "$dir/torch_all.h.gch"
    else
      echo "pch_cc.sh: the precompiled header failed; compiling without it" >&2
      touch "$dir/failed"
    fi
  fi
) 9>"$dir/.lock"
[ -f "$dir/torch_all.h.gch" ] || exec "${real[@]}" "$@"
exec "${real[@]}" -include "$dir/torch_all.h" -Winvalid-pch "$@"
