"""The JAX checks that tests/test_jax.py runs, each in a fresh interpreter: once JAX has
started its threads it warns at every fork(), which would break the fork tests of the same
pytest process. Run one with ``python tests/jax_cases.py <name>``."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trainkern
from tolerances import assert_close
from trainkern import optim
from trainkern import reference as ref


def loss_fn(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] - y) ** 2)


def problem():
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {
        "w1": jax.random.normal(k[0], (8, 16)) * 0.3,
        "b1": jnp.zeros(16),
        "w2": jax.random.normal(k[1], (16, 1)) * 0.3,
    }
    x = jax.random.normal(k[2], (64, 8))
    y = jnp.sin(x[:, :1])
    return params, x, y


def adam_update_trains_a_jax_model_like_the_reference():
    params, x, y = problem()
    grad = jax.jit(jax.grad(loss_fn))
    state = optim.adam_init(params)
    # The reference: the same loop on NumPy copies with the NumPy twin of adam_step.
    leaves, treedef = jax.tree_util.tree_flatten(params)
    r_params = [np.array(a) for a in leaves]
    r_m = [np.zeros_like(a) for a in r_params]
    r_v = [np.zeros_like(a) for a in r_params]
    first_loss = float(loss_fn(params, x, y))
    for t in range(1, 31):
        g = grad(params, x, y)
        new_params, state = optim.adam_update(params, g, state, lr=1e-2, weight_decay=1e-3)
        assert jax.tree_util.tree_structure(new_params) == treedef
        assert state["step"] == t
        r_g = [np.asarray(a) for a in jax.tree_util.tree_leaves(
            grad(jax.tree_util.tree_unflatten(treedef, r_params), x, y))]
        for p, gg, m, v in zip(r_params, r_g, r_m, r_v):
            ref.adam_step(p, gg, m, v, step=t, lr=1e-2, weight_decay=1e-3)
        params = new_params
    for a, b in zip(jax.tree_util.tree_leaves(params), r_params):
        assert isinstance(a, np.ndarray) and a.dtype == np.float32
        assert_close(a, b, "adam_jax", np.float32)
    assert float(loss_fn(params, x, y)) < 0.5 * first_loss


def adam_update_leaves_jax_inputs_and_state_alone():
    params, x, y = problem()
    g = jax.grad(loss_fn)(params, x, y)
    state = optim.adam_init(params)
    state_before = jax.tree_util.tree_map(np.copy, state["exp_avg"])
    params_before = jax.tree_util.tree_map(np.array, params)
    new_params, new_state = optim.adam_update(params, g, state, lr=1e-2)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params_before)):
        np.testing.assert_array_equal(np.asarray(a), b)
    for a, b in zip(jax.tree_util.tree_leaves(state["exp_avg"]),
                    jax.tree_util.tree_leaves(state_before)):
        np.testing.assert_array_equal(a, b)
    # The results feed straight back into JAX.
    assert np.isfinite(float(loss_fn(new_params, x, y)))
    assert new_state["step"] == 1 and state["step"] == 0


def sgd_update_with_jax_arrays():
    params, x, y = problem()
    g = jax.grad(loss_fn)(params, x, y)
    new, state = optim.sgd_update(params, g, optim.sgd_init(params), lr=0.1, momentum=0.9)
    for p, gg, n in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(g),
                        jax.tree_util.tree_leaves(new)):
        e = np.array(p)
        ref.sgd_step(e, np.asarray(gg), np.zeros_like(e), lr=0.1, momentum=0.9, step=1)
        assert_close(n, e, "sgd", np.float32)
    assert state["momentum_buffer"] is not None


def jax_arrays_are_read_through_dlpack_and_refused_as_outputs():
    p = np.linspace(-1, 1, 10, dtype=np.float32)
    g = jnp.linspace(0.5, -0.5, 10, dtype=jnp.float32)  # read-only, via __dlpack__
    m, v = np.zeros_like(p), np.zeros_like(p)
    e, em, ev = p.copy(), m.copy(), v.copy()
    trainkern.adam_step_multi([p], [g], [m], [v], steps=1, lr=0.1)
    ref.adam_step(e, np.asarray(g), em, ev, step=1, lr=0.1)
    assert_close(p, e, "adam", np.float32)
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        trainkern.adam_step_multi([jnp.ones(3)], [g[:3]], [m[:3]], [v[:3]], steps=1)
    with pytest.raises(ValueError, match="adam_update"):
        optim.Adam([jnp.ones(3)])


if __name__ == "__main__":
    globals()[sys.argv[1]]()
