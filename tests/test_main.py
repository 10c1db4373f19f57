"""`python -m trainkern`: the training job, its options, and the other subcommands."""

import io
import subprocess
import sys

import numpy as np
import pytest

from trainkern import __main__ as cli
from trainkern import _train


@pytest.fixture
def one_thread(threads):
    """Training on one thread: a 2-thread region on a busy 2-core machine waits for a
    scheduler tick, which makes the job slow without testing anything more."""
    import trainkern

    trainkern.set_num_threads(1)
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield
    if torch:
        torch.set_num_threads(before)


def test_bundled_digits_are_the_real_data_set():
    x, y = _train.load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() == 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_split_is_stratified_and_disjoint():
    x, y = _train.load_digits()
    xtr, ytr, xte, yte = _train.split(x, y, 0.2, seed=1)
    assert len(ytr) + len(yte) == len(y)
    assert np.all(np.abs(np.bincount(yte) - 0.2 * np.bincount(y)) <= 1)


def test_default_job_reaches_95_percent_and_agrees_with_the_reference(one_thread):
    out = io.StringIO()
    result = _train.train(_train.Config(), out=out)
    text = out.getvalue()
    assert result["accuracy"] >= 0.95, text
    assert result["drift"] < 1e-4, text  # trainkern's epoch equals the reference's
    assert "numpy reference" in text and "speed-up" in text
    assert result["speedups"]["numpy reference"] > 0


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_other_optimizers_learn(optimizer, one_thread):
    cfg = _train.Config(hidden=(64,), epochs=8, optimizer=optimizer,
                        lr=5e-2 if optimizer == "sgd" else 3e-3)
    assert _train.train(cfg, out=io.StringIO())["accuracy"] >= 0.9


def test_cli_options_reach_the_job(capsys, one_thread):
    assert cli.main(["train", "--epochs", "2", "--hidden", "32", "--batch-size", "128",
                     "--threads", "1", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "MLP 64-32-10" in text and "batch 128" in text and "1 thread(s)" in text


@pytest.mark.parametrize("argv,message", [
    (["--hidden", "0"], "positive sizes"),
    (["--hidden", "a,b"], "sizes like"),
    (["--optimizer", "lion"], "invalid choice"),
])
def test_cli_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert message in capsys.readouterr().err


def test_help_and_info_run_as_a_module():
    r = subprocess.run([sys.executable, "-m", "trainkern", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "--epochs" in r.stdout and "--threads" in r.stdout
    r = subprocess.run([sys.executable, "-m", "trainkern", "info"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "active" in r.stdout
