"""The dev loss plot: start and end as paired dots, or curves when the run measured dev loss at its updates.

A run always measures each dataset's dev loss before and after training (``metrics.json``). Two points are
not a trajectory, so they are drawn as a pair per dataset (hollow start, filled end) rather than a line
between them. Policies that read dev loss (``refloss``) log it at every update (``mixture.jsonl``'s
``dev_loss``); then each dataset gets a curve, on one axes up to
:data:`~moemix.report.styles.HIGHLIGHT_ABOVE` datasets and in a panel of its own past that.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from moemix.report.run_folder import RunFolder
from moemix.report.styles import (
    COLOURS,
    HIGHLIGHT_ABOVE,
    TALL,
    legend_outside,
    line_style,
    new_figure,
    row_inches,
    short_labels,
    text_inches,
    tick_fontsize,
)

LOWER, HIGHER = "#1f77b4", "#ff7f0e"  # blue: the loss went down; orange: it went up
PANEL_COLUMNS = 5


def dev_loss_points(run: RunFolder) -> dict[str, list[tuple[int, float]]]:
    """Each dataset's measured dev losses as ``(step, loss)``, by step: the start (step 0), every update that
    logged one, and the end (the run's last step). Datasets never measured are left out."""
    points: dict[str, list[tuple[int, float]]] = {}
    for name in run.names:
        found = []
        if f"eval_initial/{name}/loss" in run.metrics:
            found.append((0, float(run.metrics[f"eval_initial/{name}/loss"])))
        for record in run.records:
            value = (record.get("dev_loss") or {}).get(name)
            if value is not None:
                found.append((int(record["step"]), float(value)))
        if f"eval/{name}/loss" in run.metrics:
            found.append((run.last_step, float(run.metrics[f"eval/{name}/loss"])))
        if found:
            points[name] = sorted(found, key=lambda p: p[0])
    return points


def measured_at_updates(points: dict[str, list[tuple[int, float]]]) -> bool:
    """Whether any dataset has more than its start and end: the run logged dev loss at its updates."""
    return any(len(p) > 2 for p in points.values())


def dev_loss_figure(run: RunFolder) -> Figure | None:
    """Dev loss per dataset (see the module's docstring); None when no dev loss was measured yet."""
    points = dev_loss_points(run)
    if not points:
        return None
    if not measured_at_updates(points):
        return _paired_dots(run, points)
    if len(run.names) <= HIGHLIGHT_ABOVE:
        return _curves(run, points)
    return _panels(run, points)


def _paired_dots(run: RunFolder, points: dict[str, list[tuple[int, float]]]) -> Figure:
    names = [n for n in run.names if n in points]
    labels = short_labels(names)
    start = np.array([points[n][0][1] for n in names])
    end = np.array([points[n][-1][1] for n in names])
    changes = [
        f"{s:.3f} → {e:.3f}  ({e - s:+.3f})" if len(points[n]) > 1 else f"{s:.3f}" for n, s, e in zip(names, start, end)
    ]
    size = tick_fontsize(len(names))
    height = row_inches(len(names)) * 1.3 * len(names) + 1.5
    legend_width = text_inches(["end: higher"], 8) + 0.8
    fig, ax = new_figure(4.5 + text_inches(labels, size) + text_inches(changes, size) + legend_width, height)
    y = np.arange(len(names))
    for i, name in enumerate(names):
        if len(points[name]) > 1:
            ax.plot([start[i], end[i]], [i, i], color="#999999", linewidth=1.5, zorder=1)
    ax.scatter(start, y, s=36, facecolors="white", edgecolors="#444444", linewidths=1.3, zorder=2)
    measured_twice = np.array([len(points[n]) > 1 for n in names])
    colours = [LOWER if e <= s else HIGHER for s, e in zip(start, end)]
    ax.scatter(end[measured_twice], y[measured_twice], s=36, c=np.array(colours)[measured_twice], zorder=3)
    ax.set_yticks(y, labels, fontsize=size)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first dataset on top, as in the report's tables
    if len(names) > TALL:  # a scale above and below: the top rows are far from the bottom axis
        ax.tick_params(axis="x", labeltop=True)
    right = ax.twinx()  # the figures beside each row, laid out like tick labels so they are never cut off
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y, changes, fontsize=size)
    right.tick_params(length=0)
    ax.set_xlabel("dev loss (per assistant token)")
    ax.set_title("Dev loss at the start and at the end of training", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], linestyle="", marker="o", markerfacecolor="white", markeredgecolor="#444444")]
    legend_labels = ["start"]
    for colour, label in ((LOWER, "end: lower"), (HIGHER, "end: higher")):
        if colour in np.array(colours)[measured_twice]:
            handles.append(Line2D([], [], linestyle="", marker="o", color=colour))
            legend_labels.append(label)
    legend_outside(fig, handles, legend_labels)
    return fig


def _curves(run: RunFolder, points: dict[str, list[tuple[int, float]]]) -> Figure:
    names = [n for n in run.names if n in points]
    labels = dict(zip(names, short_labels(names)))
    last = {n: points[n][-1][1] for n in names}
    legend_labels = [f"{labels[n]}  {last[n]:.3f}" for n in names]
    fig, ax = new_figure(6.5 + text_inches(legend_labels, 8) + 0.8, 4.3)
    handles = {}
    for n in names:
        colour, dashes = line_style(run.names.index(n))  # the same style as the weights plot's
        steps, losses = zip(*points[n])
        handles[n] = ax.plot(steps, losses, color=colour, linestyle=dashes, linewidth=1.8, marker="o", markersize=3.5)[
            0
        ]
    order = sorted(names, key=lambda n: -last[n])  # the legend reads top to bottom as the lines end
    legend_outside(
        fig, [handles[n] for n in order], [f"{labels[n]}  {last[n]:.3f}" for n in order], title="last dev loss"
    )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("dev loss (per assistant token)")
    ax.set_title("Dev loss per dataset over training", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def _panels(run: RunFolder, points: dict[str, list[tuple[int, float]]]) -> Figure:
    names = [n for n in run.names if n in points]
    labels = short_labels(names, width=24)
    rows = math.ceil(len(names) / PANEL_COLUMNS)
    fig, axes = new_figure(
        2.7 * PANEL_COLUMNS, 1.65 * rows + 1.0, nrows=rows, ncols=PANEL_COLUMNS, sharex=True, sharey=True, squeeze=False
    )
    flat = axes.ravel()
    for ax, name, label in zip(flat, names, labels):
        steps, losses = zip(*points[name])
        ax.plot(steps, losses, color=COLOURS[0], linewidth=1.5, marker="o", markersize=2.5)
        ax.set_title(f"{label}\n{losses[0]:.3f} → {losses[-1]:.3f}", fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[: len(names)]):
        ax.label_outer()
        if i + PANEL_COLUMNS >= len(names):  # nothing below it in a short last row: it carries the step ticks
            ax.tick_params(labelbottom=True)
    fig.suptitle("Dev loss per dataset over training (shared axes)", fontsize=10)
    fig.supxlabel("optimizer step", fontsize=9)
    fig.supylabel("dev loss (per assistant token)", fontsize=9)
    return fig
