"""Build properties that a wheel for every server depends on."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None,
                    reason="needs Debian's g++-aarch64-linux-gnu")
@pytest.mark.skipif(not (ROOT / "scripts").is_dir(), reason="needs the source tree")
def test_arm64_cross_build_compiles_scalar_and_neon():
    r = subprocess.run(["bash", str(ROOT / "scripts" / "check_arm64_build.sh")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "arm64 build ok" in r.stdout
