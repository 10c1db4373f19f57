"""Tables and plots of benchmark results, from `python -m trainkern bench` or from a
pytest-benchmark JSON file (`python -m trainkern report FILE.json`)."""

from __future__ import annotations

import json

IMPL_ORDER = ["trainkern", "numpy", "torch"]


def _impls(results):
    seen = {name for r in results for name in r["seconds"]}
    return [n for n in IMPL_ORDER if n in seen] + sorted(seen - set(IMPL_ORDER))


def _fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def format_table(report: dict) -> str:
    """One line per kernel and shape: time, rate and % of roof per implementation,
    and trainkern's speed-up over each peer."""
    results = report["results"]
    impls = _impls(results)
    peers = [n for n in impls if n != "trainkern"]
    head = ["kernel", "shape"] + [f"{n} time" for n in impls] + ["tk rate", "tk % roof"]
    head += [f"vs {p}" for p in peers]
    rows = []
    for r in results:
        row = [r["kernel"], r["shape"]]
        row += [_fmt_time(r["seconds"][n]) if n in r["seconds"] else "-" for n in impls]
        if "trainkern" in r["rate"]:
            row.append(f"{r['rate']['trainkern']:.1f} {r['unit']}")
            pct = r["pct_of_roof"].get("trainkern")
            row.append("-" if pct is None else f"{pct:.0f}% {r['roof']}")
        else:
            row += ["-", "-"]
        row += [f"{r['speedup'][p]:.2f}x" if p in r["speedup"] else "-" for p in peers]
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    env = report.get("environment")
    if env:
        desc = ", ".join(f"{k} {v}" for k, v in env.items())
        out.insert(0, desc)
    return "\n".join(out)


def plot(report: dict, path: str) -> None:
    """Per kernel, each implementation's rate as % of the roof (horizontal bars)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: python -m pip install 'trainkern[plot]'"
        ) from None
    results = report["results"]
    impls = _impls(results)
    labels = [f"{r['kernel']}\n{r['shape']}" for r in results]
    height = 0.8 / max(1, len(impls))
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(results) * max(2, len(impls)) / 2 + 1.5))
    colors = {"trainkern": "#1f77b4", "numpy": "#ff7f0e", "torch": "#2ca02c"}
    for k, name in enumerate(impls):
        ys = [i + k * height for i in range(len(results))]
        xs = [r["pct_of_roof"].get(name, 0.0) for r in results]
        ax.barh(ys, xs, height=height, label=name, color=colors.get(name))
        for y, x in zip(ys, xs):
            if x > 0:
                ax.text(x + 1, y, f"{x:.0f}%", va="center", fontsize=7)
    ax.set_yticks([i + height * (len(impls) - 1) / 2 for i in range(len(results))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(100, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("% of roof (memory stream of the same shape, or FMA peak)")
    env = report.get("environment", {})
    ax.set_title(f"trainkern on {env.get('cpu', '?')}, {env.get('isa', '?')}, "
                 f"{env.get('threads', '?')} thread(s), {env.get('date', '')}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def from_pytest_benchmark(path: str) -> dict:
    """Turn a pytest-benchmark JSON file (bench/ suite) into the report structure.

    Each group becomes a row; `extra_info` carries impl, bytes or flops, and roof=True on
    the benchmark that measured the group's roof."""
    with open(path) as f:
        data = json.load(f)
    groups: dict = {}
    for b in data["benchmarks"]:
        groups.setdefault(b.get("group") or b["name"], []).append(b)
    results = []
    for group, items in groups.items():
        roof = next((b for b in items if b["extra_info"].get("roof")), None)
        seconds, rate, unit = {}, {}, "GB/s"
        for b in items:
            info = b["extra_info"]
            if info.get("roof") or "impl" not in info:
                continue
            med = b["stats"]["median"]
            seconds[info["impl"]] = med
            if "flops" in info:
                unit, rate[info["impl"]] = "GFLOP/s", info["flops"] / med / 1e9
            elif "bytes" in info:
                rate[info["impl"]] = info["bytes"] / med / 1e9
        if not seconds:
            continue
        roof_rate = None
        if roof is not None:
            key = "flops" if unit == "GFLOP/s" else "bytes"
            roof_rate = roof["extra_info"][key] / roof["stats"]["median"] / 1e9
        tk = seconds.get("trainkern")
        results.append({
            "family": group.split("-")[0],
            "kernel": group,
            "shape": "",
            "unit": unit,
            "roof": "measured" if roof is not None else "none",
            "roof_rate": roof_rate,
            "seconds": seconds,
            "rate": rate,
            "pct_of_roof": {n: 100 * r / roof_rate for n, r in rate.items()} if roof_rate else {},
            "speedup": {n: t / tk for n, t in seconds.items() if tk and n != "trainkern"},
        })
    info = data.get("machine_info", {})
    env = {"cpu": info.get("cpu", {}).get("brand_raw", "?"), "date": data.get("datetime", "")[:10]}
    return {"environment": env, "results": results}
