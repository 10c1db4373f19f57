#!/usr/bin/env bash
# Runs the test suite under qemu user-mode emulation with CPU models that lack AVX-512
# (Haswell: AVX2) and AVX2 (Nehalem: SSE4.2 only), to prove that dispatch picks the right
# target there and that nothing executes an instruction the CPU does not have (SIGILL).
# Needs Debian's qemu-user. Extra arguments go to pytest (e.g. tests/test_optim.py).
# The whole suite takes several minutes per model (emulation is 10-30x slower).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(python3 -c "import sys; print(sys.executable)")
quiet() { grep -v "TCG doesn't support requested feature" >&2 || true; }
status=0
for spec in Nehalem:scalar Haswell:avx2; do
  cpu=${spec%%:*}
  want=${spec##*:}
  got=$(qemu-x86_64 -cpu "$cpu" "$PY" -c "import trainkern; print(trainkern.isa())" 2> >(quiet))
  echo "== qemu -cpu $cpu: active target '$got' (expected '$want')"
  if [ "$got" != "$want" ]; then
    status=1
    continue
  fi
  start=$(date +%s)
  qemu-x86_64 -cpu "$cpu" "$PY" -m pytest -q -p no:cacheprovider "$@" 2> >(quiet) || status=1
  echo "== qemu -cpu $cpu: $(( $(date +%s) - start )) s"
done
exit $status
