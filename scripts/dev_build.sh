#!/usr/bin/env bash
# Incremental development build: compiles the extension into build/dev and copies it into
# python/trainkern, so that `PYTHONPATH=python python -m pytest` runs the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/dev/build.ninja ]; then
  cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$(command -v python3)" \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" "$@"
fi
cmake --build build/dev
