#!/usr/bin/env bash
# Builds the extension with AddressSanitizer + UndefinedBehaviorSanitizer into build/asan
# (CMake + Ninja, as dev_build.sh does; the dev build's python/trainkern/_core*.so is left
# alone) and runs the test suite against it from a staged copy of the package.
# Usage: scripts/sanitize.sh [pytest arguments]   (default: the whole suite)
# Python itself is not instrumented, so the ASan runtime must be loaded first (LD_PRELOAD);
# leak detection is off because the interpreter keeps memory until exit (see
# docs/hardening.md for the LSan run). Any UBSan report stops the run (halt_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/asan/build.ninja ]; then
  # RelWithDebInfo: pybind11 strips Release modules, and reports need symbols
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTRAINKERN_SANITIZE=ON -DTRAINKERN_COPY_TO_SOURCE=OFF \
    -DPython_EXECUTABLE="$(command -v python3)" \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)"
fi
cmake --build build/asan

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r python/trainkern "$stage/"
rm -f "$stage"/trainkern/_core*.so
cp build/asan/_core*.so "$stage/trainkern/"

# Reports go to files as well: pytest captures a test's stderr, and a process that the
# sanitizer stops takes the captured text with it.
reports="$stage/reports"
mkdir "$reports"
CXX=${CXX:-c++}
export LD_PRELOAD="$($CXX -print-file-name=libasan.so) $($CXX -print-file-name=libubsan.so)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}:log_path=$reports/asan
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}:log_path=$reports/ubsan
export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import trainkern, sys; print('sanitized build:', trainkern._core.__file__)"
status=0
python3 -m pytest -q -p no:cacheprovider "$@" || status=$?
if compgen -G "$reports/*" >/dev/null; then
  cat "$reports"/* >&2
  echo "== sanitizer reports: $(ls "$reports" | wc -l)" >&2
  exit 1
fi
echo "== no sanitizer reports"
exit $status
