"""JAX arrays through trainkern: the functional optimizer form (JAX arrays are immutable)
and DLPack intake. Skipped when JAX is not installed. Each check runs in its own
interpreter (see jax_cases.py): JAX must not start its threads in this process."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("jax") is None:
    pytest.skip("JAX is not installed", allow_module_level=True)

HERE = Path(__file__).resolve().parent
CASES = [
    "adam_update_trains_a_jax_model_like_the_reference",
    "adam_update_leaves_jax_inputs_and_state_alone",
    "sgd_update_with_jax_arrays",
    "jax_arrays_are_read_through_dlpack_and_refused_as_outputs",
]


@pytest.mark.parametrize("case", CASES)
def test_jax(case):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE)] + sys.path)
    r = subprocess.run([sys.executable, "-W", "error", str(HERE / "jax_cases.py"), case],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
