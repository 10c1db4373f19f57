#!/usr/bin/env bash
# Cross-compiles the kernel library (every target TU, dispatch and the op entry points; not
# the Python bindings, which need an arm64 Python) for arm64 with Debian's
# g++-aarch64-linux-gnu, to prove the scalar and NEON targets build there.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-std=c++17 -O2 -fPIC -fvisibility=hidden -fopenmp -Wall -Wextra -Wno-unused-parameter -Werror
       -DTRAINKERN_HAVE_SCALAR=1 -DTRAINKERN_HAVE_NEON=1 -Icpp/include -Icpp/src)
for src in cpp/src/targets/scalar.cpp cpp/src/targets/neon.cpp cpp/src/dispatch.cpp \
           cpp/src/parallel.cpp cpp/src/ops/*.cpp; do
  "$CXX" "${flags[@]}" -c "$src" -o "$out/$(basename "$src").o"
done
"$CXX" -shared -fopenmp -o "$out/libtrainkern_kernels.so" "$out"/*.o
echo "arm64 build ok: $(ls "$out"/*.o | wc -l) objects linked"
