"""How every plot of a run tells datasets apart and keeps its text inside the picture, from 2 to 50+ datasets.

Each dataset line gets a colour and a dash pattern that no other line shares, so two lines that lie on each
other still show both, and a reader who cannot tell two colours apart still can tell the dashes. Past
:data:`HIGHLIGHT_ABOVE` datasets ten colours are no longer enough to find a line by its legend entry, so the
plots colour a chosen few and draw the rest in grey (or give each dataset its own small panel). Figures use
matplotlib's constrained layout and grow with the number of datasets, so labels are never cut off.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# Tableau's ten: distinct hues that stay apart for most colour-vision deficiencies.
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# Five dash patterns; with the ten colours, 50 (colour, dashes) pairs.
DASHES = ("-", "--", ":", "-.", (0, (5, 1.5, 1, 1.5, 1, 1.5)))
GREY = "#b8b8b8"
HIGHLIGHT_ABOVE = 12
"""More datasets than this: colour only the :data:`HIGHLIGHTED` most interesting ones, the others grey."""
HIGHLIGHTED = 10
TALL = 20  # rows: from here a bar or dot chart repeats its value scale at the top
DPI = 110
MAX_INCHES = 18.0  # about 2,000 pixels at DPI: still opens at a readable scale in a browser
LABEL_CHARS = 28


def line_style(index: int) -> tuple[str, str | tuple]:
    """The (colour, dash pattern) of the ``index``-th dataset line; distinct for the first 50 indices.

    Consecutive indices differ in both colour and dashes, and index ``i`` and ``i + 10`` (same colour) differ
    in dashes, so no two of the first ``len(COLOURS) * len(DASHES)`` lines look alike.
    """
    colour = COLOURS[index % len(COLOURS)]
    dashes = DASHES[(index + index // len(COLOURS)) % len(DASHES)]
    return colour, dashes


def short_label(name: str, width: int = LABEL_CHARS) -> str:
    """``name`` cut in the middle to ``width`` characters (``t0_super_gl…_prompt_3``), whole if it fits."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head) :]


def short_labels(names: list[str], width: int = LABEL_CHARS) -> list[str]:
    """:func:`short_label` of each name, or the names whole where cutting would make two alike."""
    short = [short_label(n, width) for n in names]
    return short if len(set(short)) == len(set(names)) else list(names)


def tick_fontsize(count: int) -> float:
    """Font size (points) of one tick label per row, for ``count`` rows: smaller as rows get denser."""
    return 9.0 if count <= 20 else 8.0 if count <= 40 else 7.0


def row_inches(count: int) -> float:
    """Height of one labelled row (a heatmap row, a dataset's bars): a line of :func:`tick_fontsize` text
    with room above and below."""
    return 1.9 * tick_fontsize(count) / 72


def text_inches(labels: list[str], fontsize: float) -> float:
    """Rough width of the widest label: about 0.6 em per character."""
    return max((len(label) for label in labels), default=0) * 0.6 * fontsize / 72


def new_figure(width: float, height: float, **subplots) -> tuple[Figure, object]:
    """A figure with constrained layout (titles, tick labels, colour bars and an outside legend get room),
    sized in inches and capped at :data:`MAX_INCHES`; returns ``(fig, axes)`` as ``plt.subplots`` does."""
    size = (min(max(width, 3.0), MAX_INCHES), min(max(height, 2.5), MAX_INCHES))
    return plt.subplots(figsize=size, layout="constrained", **subplots)


def legend_outside(fig: Figure, handles: list, labels: list[str], title: str | None = None, fontsize: float = 8):
    """The legend to the right of every axes, top-aligned; constrained layout shrinks the axes to make room."""
    return fig.legend(
        handles,
        labels,
        loc="outside right upper",
        fontsize=fontsize,
        title=title,
        title_fontsize=fontsize,
        frameon=False,
        handlelength=3.2,  # long enough to show a whole period of every dash pattern
    )


def save(fig: Figure, path) -> None:
    """Write the figure as PNG and free it."""
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
