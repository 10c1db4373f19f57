import numpy as np
import pytest

import trainkern
from trainkern import _core

COMPILED = _core.compiled_isas()
RUNNABLE = set(trainkern.available_isas())


@pytest.fixture(params=COMPILED)
def isa(request):
    """Run the test once per compiled ISA target, restoring the selection afterwards."""
    if request.param not in RUNNABLE:
        pytest.skip(f"target {request.param} is built but this CPU cannot run it")
    previous = trainkern.isa()
    _core.set_isa(request.param)
    assert trainkern.isa() == request.param
    yield request.param
    _core.set_isa(previous)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


@pytest.fixture
def threads():
    """Restore the thread count a test changes."""
    yield
    _core._reset_num_threads()
