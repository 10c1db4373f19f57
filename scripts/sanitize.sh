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

# pytest captures only Python's sys.stdout/err here (--capture=sys): a report the runtime
# writes to fd 2 reaches the log even when the sanitizer stops the process (fd capture would
# take it along). The log is then searched for reports, also from child processes.
log="$stage/pytest.log"
# the interpreter itself, not a launcher script (pyenv's shims are bash: under LD_PRELOAD
# they would be instrumented too)
PY=$(python3 -c "import sys; print(sys.executable)")
CXX=${CXX:-c++}
export LD_PRELOAD="$($CXX -print-file-name=libasan.so) $($CXX -print-file-name=libubsan.so)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import trainkern, sys; print('sanitized build:', trainkern._core.__file__)"
# Left out: the resident-set test (ASan keeps freed memory in quarantine, 256 MiB by
# default, so RSS grows by design; the LSan run covers leaks) and the qemu subset (qemu
# itself would start with the ASan runtime preloaded).
skip=(--deselect tests/test_memory.py::test_every_kernel_10000_times_does_not_grow_the_resident_set
      --deselect tests/test_qemu.py::test_subset_on_emulated_cpus_without_avx512_and_without_avx2)
status=0
# (pipefail: the pipeline fails with pytest's status)
"$PY" -m pytest -q -p no:cacheprovider --capture=sys "${skip[@]}" "$@" 2>&1 | tee "$log" ||
  status=$?
reports=$(grep -cE "runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)" "$log" || true)
if [ "$reports" != 0 ]; then
  echo "== sanitizer reports: $reports" >&2
  exit 1
fi
echo "== no sanitizer reports"
exit $status
