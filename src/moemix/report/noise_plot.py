"""The noise plot: how far each update's routing signal stood above its sampling noise.

Read from the ``noise`` field every update logs in ``mixture.jsonl`` (see :mod:`moemix.mixing.noise`). The top
panel is the signal-to-noise ratio per update, on a log scale with the line SNR = 1 below which the update's
direction is within the noise. Below it, per dataset, the score D_i's deviation from the mean score (what moves
its weight) with a band of one standard error either side: a band that straddles 0 is a direction the data do
not support. On one axes up to :data:`ONE_AXES` datasets; past that each dataset gets a small panel of its own,
on shared axes, so that 50 bands stay apart.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from moemix.report.run_folder import RunFolder
from moemix.report.styles import (
    COLOURS,
    GREY,
    MAX_INCHES,
    legend_outside,
    line_style,
    new_figure,
    plt,
    short_labels,
    text_inches,
)

ONE_AXES = 6
"""Up to this many datasets the deviations share one axes; past it, one panel per dataset."""
PANEL_COLUMNS = 5
SNR_RANGE = (0.05, 100.0)  # an SNR outside is drawn at the edge, as a triangle pointing off the axes
WITHIN, ABOVE = "#ff7f0e", "#1f77b4"  # orange: within the noise; blue: above it


def noise_updates(run: RunFolder) -> list[tuple[int, dict]]:
    """``(step, noise record)`` of each update that logged an estimate (records without one are left out)."""
    found = []
    for record in run.records:
        noise = record.get("noise")
        if isinstance(noise, dict) and "scores" in noise and "score_se" in noise and "snr" in noise:
            found.append((int(record["step"]), noise))
    return found


def _snr_axes(ax, updates: list[tuple[int, dict]]) -> None:
    steps = np.array([step for step, _ in updates])
    snr = np.array([math.nan if n["snr"] is None else float(n["snr"]) for _, n in updates])
    low, high = SNR_RANGE
    shown = np.clip(snr, low, high)
    ax.plot(steps, shown, color="#999999", linewidth=1, zorder=1)
    for mask, colour in ((shown < 1, WITHIN), (shown >= 1, ABOVE)):
        inside = mask & (snr > low) & (snr < high)
        ax.scatter(steps[inside], shown[inside], s=22, color=colour, zorder=2)
        ax.scatter(steps[mask & (snr >= high)], shown[mask & (snr >= high)], s=30, marker="^", color=colour, zorder=2)
        ax.scatter(steps[mask & (snr <= low)], shown[mask & (snr <= low)], s=30, marker="v", color=colour, zorder=2)
    ax.axhline(1.0, color="#444444", linestyle="--", linewidth=1, zorder=0)
    ax.set_yscale("log")
    ax.set_ylim(low / 1.4, high * 1.4)
    ax.set_ylabel("signal / noise", fontsize=9)
    ax.set_title(
        "Signal-to-noise ratio of each update (below the dashed line: direction within the noise)", fontsize=10
    )
    ax.grid(alpha=0.3, which="major")


def _deviations(updates: list[tuple[int, dict]], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = np.array([step for step, _ in updates])
    scores = np.array([u["scores"] for _, u in updates], dtype=float).reshape(len(updates), n)
    se = np.array([u["score_se"] for _, u in updates], dtype=float).reshape(len(updates), n)
    return steps, scores - scores.mean(axis=1, keepdims=True), se


def noise_figure(run: RunFolder) -> Figure | None:
    """SNR per update and each dataset's score deviation with its ±1 SE band; None when no update logged noise."""
    updates = noise_updates(run)
    names = run.names
    if not updates or any(len(u["scores"]) != len(names) for _, u in updates):
        return None
    steps, deviation, se = _deviations(updates, len(names))
    if len(names) <= ONE_AXES:
        return _one_axes(run, updates, steps, deviation, se)
    return _panels(run, updates, steps, deviation, se)


def _legend_handles() -> tuple[list, list[str]]:
    handles = [
        Line2D([], [], linestyle="", marker="o", color=ABOVE),
        Line2D([], [], linestyle="", marker="o", color=WITHIN),
    ]
    return handles, ["SNR above 1", "SNR below 1"]


def _one_axes(run: RunFolder, updates, steps, deviation, se) -> Figure:
    labels = short_labels(run.names)
    extra, extra_labels = _legend_handles()
    legend_labels = extra_labels + [f"{label}  ± 1 SE" for label in labels]
    fig, (top, bottom) = new_figure(
        6.5 + text_inches(legend_labels, 8) + 0.8, 6.2, nrows=2, sharex=True, height_ratios=[1, 1.6]
    )
    _snr_axes(top, updates)
    handles = []
    for i in range(len(run.names)):
        colour, dashes = line_style(i)  # the same style as the weights plot's
        bottom.fill_between(
            steps, deviation[:, i] - se[:, i], deviation[:, i] + se[:, i], color=colour, alpha=0.15, linewidth=0
        )
        handles.append(
            bottom.plot(
                steps, deviation[:, i], color=colour, linestyle=dashes, linewidth=1.8, marker="o", markersize=3
            )[0]
        )
    bottom.axhline(0.0, color="#444444", linewidth=0.8)
    bottom.set_xlabel("optimizer step")
    bottom.set_ylabel("score − mean score", fontsize=9)
    bottom.set_title("Each dataset's score (distance to the others) minus the mean: above 0 gains weight", fontsize=10)
    bottom.grid(alpha=0.3)
    legend_outside(fig, extra + handles, legend_labels)
    return fig


def _panels(run: RunFolder, updates, steps, deviation, se) -> Figure:
    n = len(run.names)
    labels = short_labels(run.names, width=24)
    rows = math.ceil(n / PANEL_COLUMNS)
    # Two stacked subfigures (the SNR, then the panels), each laid out on its own grid.
    fig = plt.figure(figsize=(2.7 * PANEL_COLUMNS, min(2.2 + 1.45 * rows + 0.8, MAX_INCHES)), layout="constrained")
    top_fig, panel_fig = fig.subfigures(2, 1, height_ratios=[2.2, 1.45 * rows + 0.8])
    _snr_axes(top_fig.subplots(), updates)
    handles, legend_labels = _legend_handles()
    top_fig.legend(handles, legend_labels, loc="outside right upper", fontsize=8, frameon=False)
    axes = panel_fig.subplots(rows, PANEL_COLUMNS, sharex=True, sharey=True, squeeze=False)
    flat = axes.ravel()
    for i, (ax, label) in enumerate(zip(flat, labels)):
        ax.fill_between(
            steps, deviation[:, i] - se[:, i], deviation[:, i] + se[:, i], color=COLOURS[0], alpha=0.2, linewidth=0
        )
        ax.plot(steps, deviation[:, i], color=COLOURS[0], linewidth=1.3)
        ax.axhline(0.0, color=GREY, linewidth=0.8)
        last, band = deviation[-1, i], se[-1, i]
        ax.set_title(f"{label}\nlast {last:+.3f} ± {band:.3f}", fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in flat[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[:n]):
        ax.label_outer()
        if i + PANEL_COLUMNS >= n:  # nothing below it in a short last row: it carries the step ticks
            ax.tick_params(labelbottom=True)
    panel_fig.suptitle(
        "Each dataset's score minus the mean score, ± 1 standard error (above 0 gains weight; shared axes)", fontsize=10
    )
    panel_fig.supxlabel("optimizer step", fontsize=9)
    return fig
