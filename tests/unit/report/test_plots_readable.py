"""Plots stay readable from 2 to 50 datasets: every line tells its dataset apart, legends sit beside the axes,
no text is cut off or written over other text, and two dev-loss measurements are not drawn as a trajectory."""

from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.lines import Line2D
from matplotlib.text import Text

from moemix.report.dev_loss_plot import HIGHER, LOWER, dev_loss_figure
from moemix.report.heatmaps import distances_figure, loads_figure
from moemix.report.plots import PLOTS, plot_distances, plot_loads, plot_run, realised_figure, weights_figure
from moemix.report.run_folder import read_run
from moemix.report.styles import GREY, HIGHLIGHT_ABOVE, HIGHLIGHTED, MAX_INCHES, line_style, short_labels

COUNTS = [2, 4, 15, pytest.param(50, marks=pytest.mark.slow)]  # 50 datasets: ~10-18 s a figure


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def drawn(fig):
    fig.canvas.draw()  # constrained layout runs at draw time
    return fig.canvas.get_renderer()


def visible_texts(fig) -> list[Text]:
    # Only the ticks inside the view are drawn; the labels of spare ticks keep stale positions: tick labels
    # are taken from the ticks at their current locations below, the other texts from everything drawn.
    tick_texts = {
        id(t)
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for tick in axis.majorTicks + axis.minorTicks
        for t in (tick.label1, tick.label2)
    }
    texts = []
    for text in fig.findobj(Text):
        axes = text.axes
        if not text.get_visible() or not text.get_text().strip() or (axes is not None and not axes.get_visible()):
            continue
        if id(text) not in tick_texts:
            texts.append(text)
    for ax in fig.axes:
        if ax.get_visible():
            for axis in (ax.xaxis, ax.yaxis):
                lo, hi = sorted(axis.get_view_interval())
                texts += [
                    t
                    for t, loc in zip(axis.get_ticklabels(), axis.get_ticklocs())
                    if t.get_visible() and t.get_text().strip() and lo - 1e-9 <= loc <= hi + 1e-9
                ]
    return texts


def assert_text_inside(fig):
    renderer = drawn(fig)
    box = fig.bbox
    for text in visible_texts(fig):
        extent = text.get_window_extent(renderer)
        assert (
            extent.x0 >= box.x0 - 1 and extent.y0 >= box.y0 - 1 and extent.x1 <= box.x1 + 1 and extent.y1 <= box.y1 + 1
        ), f"{text.get_text()!r} at {extent} is cut off by the figure {box}"


def assert_apart(labels, renderer, what):
    boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
    for a, b in zip(boxes, boxes[1:]):
        overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
        overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert overlap_x <= 0.5 or overlap_y <= 0.5, f"{what}: two tick labels overlap ({a} and {b})"


def assert_legend_beside_axes(fig):
    renderer = drawn(fig)
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends, "the figure has no legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            area = ax.get_window_extent(renderer)
            assert not box.overlaps(area), f"the legend {box} covers an axes {area}"


def styles_of(lines: list[Line2D]) -> list[tuple[str, str]]:
    return [(mcolors.to_hex(line.get_color()), str(line.get_linestyle())) for line in lines]


def test_first_fifty_line_styles_are_distinct():
    styles = [line_style(i) for i in range(50)]
    assert len(set(styles)) == 50
    # neighbours in a legend differ in colour and in dashes
    for a, b in zip(styles, styles[1:]):
        assert a[0] != b[0] and a[1] != b[1]


@pytest.mark.parametrize("n", COUNTS)
def test_weight_lines_never_share_colour_and_dashes(make_run, n):
    run = read_run(make_run(n))
    fig = weights_figure(run)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines()]
    assert len(lines) == n
    coloured = [line for line in lines if mcolors.to_hex(line.get_color()) != GREY]
    assert len(set(styles_of(coloured))) == len(coloured)
    final = run.final_weights
    if n <= HIGHLIGHT_ABOVE:
        assert len(coloured) == n
    else:
        assert len(coloured) == HIGHLIGHTED
        # the coloured lines are the largest final weights, and the legend says what grey means
        largest = sorted(final.values(), reverse=True)[:HIGHLIGHTED]
        assert sorted((line.get_ydata()[-1] for line in coloured), reverse=True) == pytest.approx(largest)
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert labels[-1].startswith(f"{n - HIGHLIGHTED} others, grey")
        assert "largest coloured" in fig.legends[0].get_title().get_text()


@pytest.mark.parametrize("n", COUNTS)
def test_legends_sit_beside_the_axes(make_run, n):
    run = read_run(make_run(n))
    for fig in (weights_figure(run), realised_figure(run), dev_loss_figure(run)):
        assert_legend_beside_axes(fig)
    assert_legend_beside_axes(dev_loss_figure(read_run(make_run(min(n, HIGHLIGHT_ABOVE), periodic_dev_loss=True))))


@pytest.mark.parametrize("n", COUNTS)
def test_no_text_is_cut_off(make_run, n):
    run = read_run(make_run(n))
    periodic = read_run(make_run(n, periodic_dev_loss=True))
    figures = [
        weights_figure(run),
        loads_figure(run),
        distances_figure(run),
        realised_figure(run),
        dev_loss_figure(run),
        dev_loss_figure(periodic),
    ]
    for fig in figures:
        assert_text_inside(fig)
        width, height = fig.get_size_inches()
        assert width <= MAX_INCHES and height <= MAX_INCHES


@pytest.mark.parametrize("n", COUNTS)
def test_heatmaps_name_every_dataset_legibly(make_run, n):
    run = read_run(make_run(n, experts=64 if n == 50 else 8))
    names = short_labels(run.names)
    for fig in (loads_figure(run), distances_figure(run)):
        renderer = drawn(fig)
        ax = fig.axes[0]
        ylabels = ax.yaxis.get_ticklabels()
        assert [t.get_text() for t in ylabels] == names
        assert min(t.get_fontsize() for t in ylabels) >= 7
        assert_apart(ylabels, renderer, "dataset rows")
        assert_apart(ax.xaxis.get_ticklabels(), renderer, "columns")
        colourbar = fig.axes[1]
        assert colourbar.get_ylabel(), "the colour bar says what its colours measure"


def test_long_names_are_cut_in_the_middle_and_stay_distinct():
    names = ["t0_super_glue_wsc.fixed_does_the_pronoun_refer_to", "t0_super_glue_wsc.fixed_GPT_3_style", "math"]
    short = short_labels(names)
    assert short[2] == "math" and all(len(s) <= 28 for s in short) and len(set(short)) == 3
    assert short[0].startswith("t0_super_gl") and short[0].endswith("refer_to")
    # cutting that would merge two names keeps them whole
    alike = ["h" * 13 + "_only_here_A_" + "t" * 14, "h" * 13 + "_only_here_B_" + "t" * 14]
    assert short_labels(alike) == alike


@pytest.mark.parametrize("n", [2, 15])
def test_two_dev_loss_measurements_are_a_pair_of_dots_not_a_line(make_run, n):
    run = read_run(make_run(n))
    fig = dev_loss_figure(run)
    ax = fig.axes[0]
    for line in ax.get_lines():  # only the grey connector of each row: level, never a slope across steps
        assert len(set(line.get_ydata())) == 1
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    start, end = (np.asarray(c.get_offsets()) for c in dots)
    assert start[:, 0] == pytest.approx([run.metrics[f"eval_initial/{x}/loss"] for x in run.names])
    assert end[:, 0] == pytest.approx([run.metrics[f"eval/{x}/loss"] for x in run.names])
    assert list(start[:, 1]) == list(range(n)) == list(end[:, 1])
    # beside each row: start -> end (change), readable without the axis
    right = [t.get_text() for t in fig.axes[1].yaxis.get_ticklabels()]
    first = run.names[0]
    a, b = run.metrics[f"eval_initial/{first}/loss"], run.metrics[f"eval/{first}/loss"]
    assert right[0] == f"{a:.3f} → {b:.3f}  ({b - a:+.3f})"


def test_a_dev_loss_that_rose_is_marked_so(make_run):
    run = read_run(make_run(4))
    worse = run.names[2]
    run.metrics[f"eval/{worse}/loss"] = run.metrics[f"eval_initial/{worse}/loss"] + 0.5
    fig = dev_loss_figure(run)
    end = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)][1]
    colours = [mcolors.to_hex(c) for c in end.get_facecolors()]
    assert colours[2] == HIGHER and {colours[i] for i in (0, 1, 3)} == {LOWER}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["start", "end: lower", "end: higher"]


def test_logged_dev_losses_make_one_curve_per_dataset(make_run):
    run = read_run(make_run(4, updates=12, periodic_dev_loss=True))
    fig = dev_loss_figure(run)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4 and all(len(line.get_xdata()) == 12 + 2 for line in lines)
    assert list(lines[0].get_xdata()) == [0] + [20 * u for u in range(1, 13)] + [run.last_step]
    assert len(set(styles_of(lines))) == 4
    # the same dataset has the same colour and dashes as in the weights plot
    weights = weights_figure(run).axes[0].get_lines()
    by_end = {round(line.get_ydata()[-1], 12): line for line in weights}
    for i, name in enumerate(run.names):
        assert styles_of([by_end[round(run.final_weights[name], 12)]]) == styles_of([lines[i]])


def test_logged_dev_losses_past_twelve_datasets_get_a_panel_each(make_run):
    run = read_run(make_run(15, updates=6, periodic_dev_loss=True))
    fig = dev_loss_figure(run)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 15
    for ax, label in zip(panels, short_labels(run.names, width=24)):
        (line,) = ax.get_lines()
        assert len(line.get_xdata()) == 6 + 2
        assert ax.get_title().startswith(label)
    drawn(fig)
    bottom = [ax for ax in panels if any(t.get_visible() and t.get_text() for t in ax.get_xticklabels())]
    assert len(bottom) == 5, "each column's lowest panel carries the step axis"


def test_a_uniform_run_says_its_lines_lie_on_each_other(make_run):
    fig = weights_figure(read_run(make_run(4, policy="uniform")))
    assert "same weight throughout" in fig.axes[0].get_title()


def test_lines_that_coincide_are_named_in_the_legend(make_run):
    run = read_run(make_run(4))
    twin = run.names[1]
    for record in run.records:  # the second dataset follows the first exactly
        record["weights"][twin] = record["weights"][run.names[0]]
    labels = [t.get_text() for t in weights_figure(run).legends[0].get_texts()]
    (entry,) = [label for label in labels if label.startswith(twin)]
    assert entry.endswith(f"(on {run.names[0]}'s line)")
    assert sum("'s line" in label for label in labels) == 1


def test_a_run_in_progress_plots_what_its_log_holds(make_run, tmp_path):
    run_dir = make_run(4, finished=False)
    written = plot_run(run_dir)
    assert [p.name for p in written] == ["weights.png", "loads.png", "distances.png"]
    assert set(PLOTS) > {p.name for p in written}


def test_single_plots_from_records_for_inspect(make_run, tmp_path):
    records = read_run(make_run(15)).records[:1]
    plot_loads(records, tmp_path / "loads.png")
    plot_distances(records, tmp_path / "distances.png")
    for name in ("loads.png", "distances.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
