"""Heatmaps of the last update: gate loads (datasets x experts) and the distances between datasets' loads.

Rows are sized for their tick labels (:func:`moemix.report.styles.row_inches`), so every dataset name stays
readable and apart at 50 datasets; the figures grow instead, up to the size cap.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from moemix.report.run_folder import RunFolder
from moemix.report.styles import new_figure, row_inches, short_labels, text_inches, tick_fontsize

ANNOTATE_UP_TO = 12  # past this many datasets a cell is too small for its number: the colour bar reads it
MAX_EXPERT_TICKS = 32


def colourbar_shape(fig: Figure) -> dict:
    """A colour bar about a fifth of an inch wide whatever the figure's size (matplotlib's default is a share
    of the axes: broad as a column on a tall map), and no taller than needed to read its scale."""
    height = fig.get_size_inches()[1]
    shrink = 1.0 if height <= 6 else 0.6
    return {"shrink": shrink, "aspect": max(20.0, shrink * height / 0.2)}


def loads_figure(run: RunFolder) -> Figure:
    """Share of the probed layer's top-k choices that went to each expert, one row per dataset, at the last update.

    Rows sum to one (over every probed layer's experts: ``mixing.layers: all`` concatenates them).
    """
    last = run.records[-1]
    names = run.names
    labels = short_labels(names)
    loads = np.array([last["loads"][n] for n in names], dtype=float)
    experts = loads.shape[1]
    size = tick_fontsize(len(names))
    cells_width = min(max(0.3 * experts, 4.0), 10.0)
    height = max(3.0, row_inches(len(names)) * len(names) + 1.7)
    fig, ax = new_figure(text_inches(labels, size) + cells_width + 1.8, height)
    image = ax.imshow(loads, aspect="auto", cmap="viridis", vmin=0, interpolation="nearest")
    ax.set_yticks(range(len(names)), labels, fontsize=size)
    stride = math.ceil(experts / MAX_EXPERT_TICKS)
    ax.set_xticks(range(0, experts, stride), [str(e) for e in range(0, experts, stride)], fontsize=8)
    ax.set_xlabel("expert")
    ax.set_title(f"Gate load per dataset at step {last['step']}", fontsize=10)
    bar = fig.colorbar(image, ax=ax, **colourbar_shape(fig))
    bar.set_label("share of top-k choices", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    return fig


def distances_figure(run: RunFolder) -> Figure:
    """L2 distances between every two datasets' gate loads at the last update; numbers in the cells up to
    :data:`ANNOTATE_UP_TO` datasets."""
    last = run.records[-1]
    names = run.names
    labels = short_labels(names)
    n = len(names)
    dist = np.array(last["distances"], dtype=float)
    # The zero diagonal would take the bottom of the colour scale and flatten the pairs that matter: it is
    # drawn blank, and the scale spans the other cells.
    off = np.ma.masked_array(dist, mask=np.eye(n, dtype=bool))
    annotate = n <= ANNOTATE_UP_TO
    size = tick_fontsize(n)
    cell = max(row_inches(n), 0.5 if annotate else 0.0)  # a cell of a numbered map holds "0.123"
    label_width = text_inches(labels, size)
    side = n * cell
    fig, ax = new_figure(label_width + side + 1.6, max(3.4, label_width + side + 1.0))
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="#e8e8e8")
    image = ax.imshow(off, cmap=cmap, interpolation="nearest")
    # level names when they fit their column, else upright: slanted labels need as much room and read worse
    level = text_inches(labels, size) < 0.9 * cell
    ax.set_xticks(range(n), labels, fontsize=size, rotation=0 if level else 90)
    ax.set_yticks(range(n), labels, fontsize=size)
    if annotate:
        low, high = image.get_clim()
        for i in range(n):
            for j in range(n):
                if i != j:
                    dark = (dist[i, j] - low) < (high - low) / 2  # magma is dark at the bottom of its scale
                    ax.text(
                        j,
                        i,
                        f"{dist[i, j]:.3f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if dark else "black",
                    )
    ax.set_title(f"Gate-load distances at step {last['step']}", fontsize=10)
    bar = fig.colorbar(image, ax=ax, **colourbar_shape(fig))
    bar.set_label("L2 distance of the loads", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    return fig
