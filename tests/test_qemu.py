"""The fallback targets, proven on emulated CPUs: a slice of the suite under qemu-x86_64 with
a CPU model without AVX2 (Nehalem: dispatch must pick scalar) and one with AVX2 but no
AVX-512 (Haswell: avx2); an instruction the model lacks would be SIGILL. The whole suite
runs the same way with scripts/qemu_tests.sh (tens of minutes; docs/hardening.md)."""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "qemu_tests.sh"
# dispatch (children emulated too), then each family's reference checks and special values
SUBSET = ["tests/test_dispatch.py", "tests/test_optim.py", "tests/test_activations.py", "-k",
          "isa_fixture or env_var_forces or adam_special or sgd_first_step or forward_matches"
          " or backward_matches or special_values"]


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user")
@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates x86-64 CPU models")
@pytest.mark.skipif(not SCRIPT.is_file(), reason="needs the source tree's scripts/")
def test_subset_on_emulated_cpus_without_avx512_and_without_avx2():
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(["bash", str(SCRIPT), *SUBSET], capture_output=True, text=True,
                       timeout=900, env=env, cwd=ROOT)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "active target 'scalar' (expected 'scalar')" in out
    assert "active target 'avx2' (expected 'avx2')" in out
    assert out.count(" passed") == 2 and "failed" not in out, out[-4000:]
