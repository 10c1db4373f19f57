"""The main job: train a multilayer perceptron on the bundled handwritten-digits data with
trainkern's kernels only (forward, backward and update), then time the same epoch with the
NumPy reference twins and with torch.

The training step is written once against a kernel module `K` that is either `trainkern` or
`trainkern.reference`: both expose the same functions with the same signatures.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from importlib import resources

import numpy as np


def load_digits():
    """(images float32 in [0, 1], shape (1797, 64); labels int64)."""
    with resources.files("trainkern").joinpath("data/digits.npz").open("rb") as f:
        data = np.load(f)
        return data["images"].astype(np.float32) / 16.0, data["labels"].astype(np.int64)


def split(x, y, test_fraction: float, seed: int):
    """A stratified split: the same share of every class goes to the test set."""
    rng = np.random.default_rng(seed)
    test = np.concatenate([
        rng.permutation(np.flatnonzero(y == c))[: int(round(test_fraction * np.sum(y == c)))]
        for c in np.unique(y)
    ])
    mask = np.zeros(len(y), bool)
    mask[test] = True
    return x[~mask], y[~mask], x[mask], y[mask]


@dataclass
class Config:
    hidden: tuple = (256, 128)
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    seed: int = 0


class MLP:
    """Weights (in, out) as in x @ W + b, Glorot-uniform init; ReLU between layers."""

    def __init__(self, sizes, seed):
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            self.weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
            self.biases.append(np.zeros(fan_out, np.float32))

    def params(self):
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def copy(self):
        other = MLP.__new__(MLP)
        other.weights = [w.copy() for w in self.weights]
        other.biases = [b.copy() for b in self.biases]
        return other


class Trainer:
    """One model, one optimizer state, one kernel module K."""

    def __init__(self, K, model: MLP, cfg: Config):
        self.K, self.model, self.cfg = K, model, cfg
        self.state = [(np.zeros_like(p), np.zeros_like(p)) for p in model.params()]
        self.t = 0

    def forward(self, x):
        K, acts = self.K, [x]
        last = len(self.model.weights) - 1
        for i, (w, b) in enumerate(zip(self.model.weights, self.model.biases)):
            acts.append(K.linear(acts[-1], w, b, activation=None if i == last else "relu"))
        return acts

    def step(self, x, y):
        K, cfg = self.K, self.cfg
        acts = self.forward(x)
        loss, grad = K.softmax_cross_entropy(acts[-1], y)
        grads = []
        for i in reversed(range(len(self.model.weights))):
            hidden = i < len(self.model.weights) - 1
            grad, gw, gb = K.linear_backward(
                grad, acts[i], self.model.weights[i], activation="relu" if hidden else None,
                y=acts[i + 1] if hidden else None, need_grad_x=i > 0)
            grads[:0] = [gw, gb]
        self.t += 1
        for p, g, (m, v) in zip(self.model.params(), grads, self.state):
            if cfg.optimizer == "sgd":
                K.sgd_step(p, g, m, lr=cfg.lr, momentum=0.9, step=self.t)
            else:
                K.adam_step(p, g, m, v, step=self.t, lr=cfg.lr,
                            weight_decay=1e-4 if cfg.optimizer == "adamw" else 0.0,
                            decoupled_weight_decay=cfg.optimizer == "adamw")
        return float(loss)

    def epoch(self, x, y, order):
        losses = [self.step(x[idx], y[idx])
                  for idx in np.array_split(order, max(1, len(order) // self.cfg.batch_size))]
        return float(np.mean(losses))

    def accuracy(self, x, y):
        return float(np.mean(np.argmax(self.forward(x)[-1], axis=1) == y))


def _torch_epoch_seconds(model: MLP, cfg: Config, x, y, order):
    """The same epoch with torch.nn (same init, data order, optimizer)."""
    import torch

    layers = []
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(model.weights) - 1 else [])
    net = torch.nn.Sequential(*layers)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=True,
                               weight_decay=1e-4 if cfg.optimizer == "adamw" else 0.0,
                               decoupled_weight_decay=cfg.optimizer == "adamw")
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    t0 = time.perf_counter()
    for idx in np.array_split(order, max(1, len(order) // cfg.batch_size)):
        i = torch.from_numpy(idx)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt[i]), yt[i])
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def _bar(done, total, text, width=30):
    if not sys.stderr.isatty():
        return
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'-' * (width - filled)}] {text}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def train(cfg: Config, out=None) -> dict:
    import trainkern
    from trainkern import reference

    out = out if out is not None else sys.stdout
    x, y = load_digits()
    x_train, y_train, x_test, y_test = split(x, y, 0.2, cfg.seed)
    sizes = (x.shape[1], *cfg.hidden, 10)
    model = MLP(sizes, cfg.seed)
    initial = model.copy()
    rng = np.random.default_rng(cfg.seed)
    print(f"trainkern {trainkern.__version__} [{trainkern.isa()}, "
          f"{trainkern.get_num_threads()} thread(s)]: MLP {'-'.join(map(str, sizes))} on "
          f"{len(x_train)} train / {len(x_test)} test handwritten digits, "
          f"{cfg.optimizer}, lr {cfg.lr}, batch {cfg.batch_size}", file=out)
    tk = Trainer(trainkern, model, cfg)
    epoch_times, orders = [], []
    for e in range(1, cfg.epochs + 1):
        order = rng.permutation(len(x_train))
        orders.append(order)
        t0 = time.perf_counter()
        loss = tk.epoch(x_train, y_train, order)
        epoch_times.append(time.perf_counter() - t0)
        _bar(e, cfg.epochs, f"epoch {e}/{cfg.epochs}  loss {loss:.4f}")
    acc = tk.accuracy(x_test, y_test)
    tk_epoch = float(np.median(epoch_times))
    print(f"test accuracy {100 * acc:.2f}%  final train loss {loss:.4f}  "
          f"trainkern epoch {tk_epoch * 1e3:.2f} ms (median of {cfg.epochs})", file=out)

    # The same first epoch, from the same initial weights, with each implementation; the
    # median of a few repetitions, interleaved, so that a busy neighbour hurts all alike.
    def tk_epoch_once():
        trainer = Trainer(trainkern, initial.copy(), cfg)
        t0 = time.perf_counter()
        trainer.epoch(x_train, y_train, orders[0])
        return time.perf_counter() - t0, trainer

    def ref_epoch_once():
        trainer = Trainer(reference, initial.copy(), cfg)
        t0 = time.perf_counter()
        trainer.epoch(x_train, y_train, orders[0])
        return time.perf_counter() - t0, trainer

    runners = {"trainkern": tk_epoch_once, "numpy reference": ref_epoch_once}
    try:
        import torch  # noqa: F401

        runners["torch"] = lambda: (
            _torch_epoch_seconds(initial, cfg, x_train, y_train, orders[0]), None)
    except ImportError:
        pass
    times = {name: [] for name in runners}
    last = {}
    for _ in range(5):
        for name, run in runners.items():
            sec, last[name] = run()
            times[name].append(sec)
    med = {name: float(np.median(v)) for name, v in times.items()}
    drift = max(float(np.max(np.abs(a - b))) for a, b in
                zip(last["trainkern"].model.params(), last["numpy reference"].model.params()))
    tk_first = med["trainkern"]
    rows = list(med.items())
    print("\none epoch from the same initial weights and data order (median of 5):", file=out)
    for name, sec in rows:
        speed = "" if name == "trainkern" else f"   trainkern speed-up {sec / tk_first:6.2f}x"
        print(f"  {name:<16} {sec * 1e3:9.2f} ms{speed}", file=out)
    print(f"  trainkern and the reference agree to {drift:.1e} (max |difference| of the "
          f"weights after the epoch)", file=out)
    return {"accuracy": acc, "epoch_seconds": tk_epoch, "speedups": {
        name: sec / tk_first for name, sec in rows if name != "trainkern"}, "drift": drift}
