"""PNG plots of a run: weight trajectories, gate loads, distances, realised mixture, dev loss.

Everything is read from the run folder (``mixture.jsonl``, ``metrics.json``), so plots can be redrawn for any
finished or running run, and compared across runs, without the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from moemix.errors import MoemixError  # noqa: E402
from moemix.files import read_jsonl  # noqa: E402
from moemix.report.replay import initial_weights, time_averaged_weights  # noqa: E402

PLOTS = ("weights.png", "loads.png", "distances.png", "realised.png", "dev_loss.png")


def read_run(run_dir: Path) -> tuple[list[dict], dict]:
    """A run folder's mixture updates (``mixture.jsonl``) and metrics (empty before the run ends).

    Raises:
        MoemixError: If the folder holds no mixture log or no update yet.
    """
    log = run_dir / "mixture.jsonl"
    if not log.is_file():
        raise MoemixError(f"{run_dir}: not a moemix run folder (no mixture.jsonl)")
    records = read_jsonl(log)
    if not records:
        raise MoemixError(f"{log}: holds no mixture update yet")
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return records, metrics


def plot_weights(records: list[dict], metrics: dict, path: Path) -> None:
    names = list(records[0]["weights"])
    steps = [0] + [r["step"] for r in records]
    weights = np.array([initial_weights(metrics, names)] + [[r["weights"][n] for n in names] for r in records])
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, name in enumerate(names):
        ax.step(steps, weights[:, i], where="post", label=name, linewidth=2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sampling weight")
    ax.set_ylim(0, max(1e-3, weights.max()) * 1.1)
    ax.set_title("Mixture weights (each update takes effect from the next step)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_loads(records: list[dict], path: Path) -> None:
    last = records[-1]
    names = list(last["loads"])
    loads = np.array([last["loads"][n] for n in names])
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * loads.shape[1] + 2), 0.5 * len(names) + 2))
    image = ax.imshow(loads, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("expert")
    ax.set_title(f"Gate load per dataset (share of top-k choices), step {last['step']}")
    fig.colorbar(image, ax=ax, label="share of choices")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_distances(records: list[dict], path: Path) -> None:
    last = records[-1]
    names = list(last["weights"])
    dist = np.array(last["distances"])
    fig, ax = plt.subplots(figsize=(0.6 * len(names) + 3, 0.6 * len(names) + 2.5))
    image = ax.imshow(dist, cmap="magma")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{dist[i, j]:.3f}", ha="center", va="center", fontsize=7,
                    color="white" if dist[i, j] < dist.max() / 2 else "black")
    ax.set_title(f"Gate-load distances, step {last['step']}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_realised(records: list[dict], metrics: dict, path: Path) -> None:
    """Share of draws each dataset actually got over the run, against the mean target weight."""
    names = list(records[0]["weights"])
    draws = metrics.get("draws")
    if not draws:
        return
    realised = np.array([draws[n] for n in names], dtype=float)
    realised /= max(realised.sum(), 1)
    target = time_averaged_weights(records, metrics)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 4))
    ax.bar(x - 0.2, target, width=0.4, label="target (time-averaged weight)")
    ax.bar(x + 0.2, realised, width=0.4, label="realised (share of draws)")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("share")
    ax.set_title("Realised against target mixture")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_dev_loss(records: list[dict], metrics: dict, path: Path) -> None:
    """Per-dataset dev loss: at the start, at each update that measured it, and at the end."""
    names = list(records[0]["weights"])
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in names:
        points = []
        if f"eval_initial/{name}/loss" in metrics:
            points.append((0, metrics[f"eval_initial/{name}/loss"]))
        points += [(r["step"], r["dev_loss"][name]) for r in records if "dev_loss" in r and name in r["dev_loss"]]
        if f"eval/{name}/loss" in metrics:
            points.append((metrics.get("global_step", records[-1]["step"]), metrics[f"eval/{name}/loss"]))
        if points:
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("dev loss (per assistant token)")
    ax.set_title("Dev loss per dataset")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Draw every plot of a run into ``out_dir`` (default ``RUN/plots``); returns the files written.

    Raises:
        MoemixError: if the folder holds no mixture log.
    """
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    records, metrics = read_run(run_dir)
    plot_weights(records, metrics, out / "weights.png")
    plot_loads(records, out / "loads.png")
    plot_distances(records, out / "distances.png")
    plot_realised(records, metrics, out / "realised.png")
    plot_dev_loss(records, metrics, out / "dev_loss.png")
    return [out / name for name in PLOTS if (out / name).is_file()]
