"""Runtime dispatch, threads and build information."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

import trainkern
from trainkern import _core

X86 = "avx2" in _core.compiled_isas()


def _run(code, **env):
    full = dict(os.environ)
    full.pop("TRAINKERN_ISA", None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=120)


def test_active_target_is_the_best_available():
    assert trainkern.available_isas()[0] == trainkern.isa()
    assert "scalar" in trainkern.available_isas()
    assert set(trainkern.available_isas()) <= set(_core.compiled_isas())


@pytest.mark.skipif(not X86, reason="x86-64 targets")
def test_x86_build_has_every_target():
    assert _core.compiled_isas() == ["scalar", "avx2", "avx512"]


def test_isa_fixture_forces_each_target(isa):
    assert trainkern.isa() == isa


def test_set_isa_rejects_unknown_names():
    before = trainkern.isa()
    with pytest.raises(ValueError, match="unknown ISA target 'sse9'"):
        _core.set_isa("sse9")
    assert trainkern.isa() == before


@pytest.mark.parametrize("name", ["scalar", "avx2", "avx512"])
def test_env_var_forces_target(name):
    """A target the CPU runs is taken; one it cannot run is refused at import, not SIGILL."""
    r = _run("import trainkern; print(trainkern.isa())", TRAINKERN_ISA=name)
    if name in trainkern.available_isas():
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == name
    else:
        assert r.returncode != 0 and "ImportError" in r.stderr
        assert f"TRAINKERN_ISA='{name}'" in r.stderr


def test_env_var_unknown_name_fails_at_import():
    r = _run("import trainkern", TRAINKERN_ISA="avx1024")
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert "TRAINKERN_ISA='avx1024' is not a target name" in r.stderr


def test_env_var_target_not_built_fails_at_import():
    missing = "neon" if X86 else "avx512"
    r = _run("import trainkern", TRAINKERN_ISA=missing)
    assert r.returncode != 0
    assert "was not compiled into this build" in r.stderr


def test_env_var_empty_means_default():
    r = _run("import trainkern; print(trainkern.isa())", TRAINKERN_ISA="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == trainkern.available_isas()[0]


def test_threads_set_and_get(threads):
    trainkern.set_num_threads(1)
    assert trainkern.get_num_threads() == 1
    trainkern.set_num_threads(3)
    assert trainkern.get_num_threads() == 3
    with pytest.raises(ValueError, match="n must be >= 1"):
        trainkern.set_num_threads(0)
    assert trainkern.get_num_threads() == 3


def test_omp_num_threads_is_respected():
    r = _run("import trainkern; print(trainkern.get_num_threads())", OMP_NUM_THREADS="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_threadpoolctl_sees_and_limits_our_openmp(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    info = threadpoolctl.threadpool_info()
    assert any(i["user_api"] == "openmp" for i in info)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert trainkern.get_num_threads() == 1


def test_show_config_reports_dispatch_state():
    out = io.StringIO()
    trainkern.show_config(file=out)
    text = out.getvalue()
    assert f"active        {trainkern.isa()}" in text
    assert "targets built" in text and "cpu features" in text
    assert trainkern.__version__ in text


def test_stream_probe_reports_bytes():
    a = np.ones(1 << 16, np.float32)
    b = np.zeros_like(a)
    assert _core.stream_pass(1, [a, b]) == 8 * a.size
    np.testing.assert_array_equal(b, a)
