"""PNG plots of a run: weight trajectories, gate loads, distances, signal noise, realised mixture, dev loss.

Everything is read from the run folder (``mixture.jsonl``, ``metrics.json``), so plots can be redrawn for any
finished or running run, and compared across runs, without the model. Each ``*_figure`` function returns the
matplotlib figure (tests measure it); :func:`plot_run` writes them all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from moemix.report.dev_loss_plot import dev_loss_figure
from moemix.report.heatmaps import distances_figure, loads_figure
from moemix.report.noise_plot import noise_figure
from moemix.report.replay import initial_weights, time_averaged_weights
from moemix.report.run_folder import RunFolder, read_run
from moemix.report.styles import (
    GREY,
    HIGHLIGHT_ABOVE,
    HIGHLIGHTED,
    TALL,
    legend_outside,
    line_style,
    new_figure,
    row_inches,
    save,
    short_labels,
    text_inches,
    tick_fontsize,
)

PLOTS = ("weights.png", "loads.png", "distances.png", "noise.png", "realised.png", "dev_loss.png")


def weight_trajectories(run: RunFolder) -> tuple[list[int], np.ndarray]:
    """Steps and the weights that held from each (start, every update, and the run's last step repeated so
    that the last weights show for as long as they held): ``(steps, (len(steps), n) array)``."""
    names = run.names
    steps = [0] + [r["step"] for r in run.records]
    rows = [initial_weights(run.metrics, names)] + [[r["weights"][n] for n in names] for r in run.records]
    if run.last_step > steps[-1]:
        steps.append(run.last_step)
        rows.append(rows[-1])
    return steps, np.asarray(rows, dtype=float)


def weight_text(weight: float) -> str:
    """Three decimals, or two significant digits below 0.01 (0.0041, not 0.004 for all the small ones)."""
    return f"{weight:.3f}" if weight >= 0.01 or weight == 0 else f"{weight:.2g}"


def same_line_as(trajectories: np.ndarray, order: list[int]) -> dict[int, int]:
    """For each column (in ``order``) whose values equal an earlier one's at every step: that earlier column.

    Lines drawn on each other hide all but the last; the legend names them instead.
    """
    same: dict[int, int] = {}
    for pos, i in enumerate(order):
        for j in order[:pos]:
            if j not in same and np.allclose(trajectories[:, i], trajectories[:, j], rtol=0, atol=1e-9):
                same[i] = j
                break
    return same


def weights_figure(run: RunFolder) -> Figure:
    """Sampling weight of each dataset over training, one step line each.

    Up to :data:`HIGHLIGHT_ABOVE` datasets every line has its own colour and dashes; past that the
    :data:`HIGHLIGHTED` largest final weights are coloured and the others drawn thin and grey, with one legend
    entry that says how many and their range.
    """
    names = run.names
    labels = short_labels(names)
    steps, weights = weight_trajectories(run)
    final = weights[-1]
    ranked = sorted(range(len(names)), key=lambda i: (-final[i], i))  # legend: largest final weight first
    coloured = ranked if len(names) <= HIGHLIGHT_ABOVE else ranked[:HIGHLIGHTED]
    grey = [i for i in ranked if i not in coloured]
    everyone_alike = float(np.ptp(weights, axis=1).max()) < 1e-9
    same = {} if everyone_alike else same_line_as(weights, coloured)  # the title says it once

    legend_labels = [
        f"{labels[i]}  {weight_text(final[i])}" + (f"  (on {labels[same[i]]}'s line)" if i in same else "")
        for i in coloured
    ]
    if grey:
        low, high = weight_text(final[grey].min()), weight_text(final[grey].max())
        legend_labels.append(f"{len(grey)} others, grey ({low} to {high})")
    fig, ax = new_figure(6.5 + text_inches(legend_labels, 8) + 0.8, 4.3)
    for i in grey:
        ax.step(steps, weights[:, i], where="post", color=GREY, linewidth=1, zorder=1)
    handles = []
    for rank, i in enumerate(coloured):
        colour, dashes = line_style(rank if grey else i)  # a dataset keeps its style in every plot up to 12
        # a dot on the last weights: the last update often falls on the last step, where a step line
        # shows it only as a vertical stroke
        handles.append(
            ax.step(
                steps,
                weights[:, i],
                where="post",
                color=colour,
                linestyle=dashes,
                linewidth=2,
                marker="o",
                markersize=4,
                markevery=[len(steps) - 1],
                zorder=2 + rank,
            )[0]
        )  # dashed over solid: lines that coincide show both
    if grey:
        handles.append(Line2D([], [], color=GREY, linewidth=1))
    title = "final weight" if not grey else f"final weight ({len(coloured)} largest coloured)"
    legend_outside(fig, handles, legend_labels, title=title)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sampling weight")
    ax.set_ylim(0, max(1e-3, float(weights.max())) * 1.1)
    ax.set_xlim(steps[0], max(steps[-1], 1) * 1.02)  # room for the last dots
    ax.set_title(
        "Mixture weights: each update holds until the next"
        + ("\n(every dataset had the same weight throughout: one line)" if everyone_alike else ""),
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    return fig


def realised_figure(run: RunFolder) -> Figure | None:
    """Share of draws each dataset actually got over the run, against its time-averaged target weight.

    Horizontal bars, one pair per dataset from top to bottom in the run's order, so that every name reads
    level at any count. None when the run recorded no draws (not finished).
    """
    draws = run.metrics.get("draws")
    if not draws:
        return None
    names = run.names
    labels = short_labels(names)
    realised = np.array([draws.get(n, 0) for n in names], dtype=float)
    realised /= max(realised.sum(), 1)
    target = time_averaged_weights(run.records, run.metrics)
    size = tick_fontsize(len(names))
    y = np.arange(len(names))
    fig, ax = new_figure(5.5 + text_inches(labels, size) + 2.6, row_inches(len(names)) * 1.5 * len(names) + 1.6)
    ax.barh(y - 0.2, target, height=0.4, color="#4c72b0", label="target (time-averaged weight)")
    ax.barh(y + 0.2, realised, height=0.4, color="#dd8452", label="realised (share of draws)")
    ax.set_yticks(y, labels, fontsize=size)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first dataset on top, as in the report's tables
    if len(names) > TALL:  # a scale above and below: the top rows are far from the bottom axis
        ax.tick_params(axis="x", labeltop=True)
    ax.set_xlabel("share")
    ax.set_title("Realised against target mixture", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    handles, legend_labels = ax.get_legend_handles_labels()
    legend_outside(fig, handles, legend_labels)
    return fig


def _save_if_any(fig: Figure | None, path: Path) -> None:
    if fig is not None:
        save(fig, path)


# One plot from records already read (``moemix inspect`` draws the loads of a model it probed itself).
def plot_weights(records: list[dict], metrics: dict, path: Path) -> None:
    """Write :func:`weights_figure` of these updates and metrics to ``path``."""
    _save_if_any(weights_figure(RunFolder(Path(path).parent, records, metrics)), path)


def plot_loads(records: list[dict], path: Path) -> None:
    """Write :func:`~moemix.report.heatmaps.loads_figure` of the last of these updates to ``path``."""
    _save_if_any(loads_figure(RunFolder(Path(path).parent, records)), path)


def plot_distances(records: list[dict], path: Path) -> None:
    """Write :func:`~moemix.report.heatmaps.distances_figure` of the last of these updates to ``path``."""
    _save_if_any(distances_figure(RunFolder(Path(path).parent, records)), path)


def plot_realised(records: list[dict], metrics: dict, path: Path) -> None:
    """Write :func:`realised_figure` to ``path``; nothing without recorded draws."""
    _save_if_any(realised_figure(RunFolder(Path(path).parent, records, metrics)), path)


def plot_dev_loss(records: list[dict], metrics: dict, path: Path) -> None:
    """Write :func:`~moemix.report.dev_loss_plot.dev_loss_figure` to ``path``; nothing without dev losses."""
    _save_if_any(dev_loss_figure(RunFolder(Path(path).parent, records, metrics)), path)


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Draw every plot of a run into ``out_dir`` (default ``RUN/plots``); returns the files written.

    Raises:
        MoemixError: if the folder holds no mixture log.
    """
    run = read_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "plots"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "weights.png": weights_figure(run),
        "loads.png": loads_figure(run),
        "distances.png": distances_figure(run),
        "noise.png": noise_figure(run),
        "realised.png": realised_figure(run),
        "dev_loss.png": dev_loss_figure(run),
    }
    for name, fig in figures.items():
        _save_if_any(fig, out / name)
    return [out / name for name in PLOTS if (out / name).is_file()]
