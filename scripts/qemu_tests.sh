#!/usr/bin/env bash
# Runs the test suite under qemu user-mode emulation with CPU models that lack AVX-512
# (Haswell: AVX2) and AVX2 (Nehalem: SSE4.2 only), to prove that dispatch picks the right
# target there and that nothing executes an instruction the CPU does not have (SIGILL).
# Needs Debian's qemu-user. Extra arguments go to pytest (e.g. tests/test_optim.py).
# The whole suite takes tens of minutes per model (see docs/hardening.md for timings).
#
# PYTHON picks the interpreter (default: python3 on PATH); a virtual environment's
# site-packages come along. The package under test is the source tree's python/ when the
# extension has been built there (scripts/dev_build.sh), else the installed one.
# QEMU_CPUS picks the models ("Nehalem Haswell" by default; one each lets them run at once).
#
# qemu-user does not follow execve(), so a test that starts `sys.executable` in a subprocess
# would run it natively (with AVX-512). Python is therefore started through a wrapper that
# sits in a virtual-environment layout (pyvenv.cfg pointing at the real interpreter, system
# site-packages included): sys.executable is the wrapper, and every child is emulated too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$("${PYTHON:-python3}" -c "import os, sys; print(os.path.realpath(sys.executable))")
site=$("${PYTHON:-python3}" -c "import os, site; print(os.pathsep.join(site.getsitepackages()))")
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$site"
if compgen -G "python/trainkern/_core*.so" >/dev/null; then
  export PYTHONPATH="$PWD/python:$PYTHONPATH"
fi
# The two-rank torch.distributed test starts torch in two emulated interpreters.
export TRAINKERN_TEST_DEADLINE_S=${TRAINKERN_TEST_DEADLINE_S:-1800}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Haswell without the features TCG cannot emulate (qemu warns about each on every start).
models=("Nehalem:scalar" "Haswell,-pcid,-tsc-deadline,-x2apic,-hle,-invpcid,-rtm:avx2")
# Left out under emulation: a timing ratio (TCG runs AVX2 FMAs no faster than scalar ones),
# the qemu subset itself (it would start this script from inside the emulator), and on
# Nehalem the JAX checks (jaxlib itself needs AVX and refuses to load).
skip_all=(--deselect tests/test_roofline.py::test_vector_targets_have_a_higher_fma_peak_than_scalar
          --ignore=tests/test_qemu.py)
skip_Nehalem=(--ignore=tests/test_jax.py)
status=0
for spec in "${models[@]}"; do
  cpu=${spec%:*}
  want=${spec##*:}
  [[ " ${QEMU_CPUS:-Nehalem Haswell} " == *" ${cpu%%,*} "* ]] || continue
  env_dir="$work/${cpu%%,*}"
  mkdir -p "$env_dir/bin"
  printf 'home = %s\ninclude-system-site-packages = true\n' "$(dirname "$PY")" >"$env_dir/pyvenv.cfg"
  printf '#!/bin/sh\nexec qemu-x86_64 -cpu %s -0 "$0" %s "$@"\n' "$cpu" "$PY" >"$env_dir/bin/python3"
  chmod +x "$env_dir/bin/python3"
  emu="$env_dir/bin/python3"
  got=$("$emu" -c "import trainkern; print(trainkern.isa())")
  echo "== qemu -cpu $cpu: active target '$got' (expected '$want'), trainkern from" \
    "$("$emu" -c "import os, trainkern; print(os.path.dirname(trainkern.__file__))")"
  if [ "$got" != "$want" ]; then
    status=1
    continue
  fi
  start=$(date +%s)
  skip=("${skip_all[@]}")
  [ "${cpu%%,*}" = Nehalem ] && skip+=("${skip_Nehalem[@]}")
  "$emu" -m pytest -q -p no:cacheprovider "${skip[@]}" "$@" || status=1
  echo "== qemu -cpu $cpu: $(( $(date +%s) - start )) s"
done
exit $status
