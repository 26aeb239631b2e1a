"""The noise plot reads each update's logged noise, draws what was logged, and stays readable from 2 to 50 datasets."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text

from moemix.files import read_jsonl
from moemix.mixing.noise import routing_noise
from moemix.report.html import write_report
from moemix.report.noise_plot import ONE_AXES, noise_figure
from moemix.report.plots import plot_run
from moemix.report.run_folder import read_run
from moemix.report.styles import MAX_INCHES


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def with_noise(path, examples: int = 12, skip: tuple[int, ...] = ()):
    """Log a real noise estimate at every update of a run folder: units drawn around each logged load."""
    rng = np.random.default_rng(0)
    records = read_jsonl(path / "mixture.jsonl")
    for k, record in enumerate(records):
        names = list(record["weights"])
        units = [
            rng.multinomial(30, np.asarray(record["loads"][n]) / sum(record["loads"][n]), size=examples) for n in names
        ]
        record["noise"] = (
            None if k in skip else routing_noise(units, seed=[0, record["step"]], resamples=30).to_record()
        )
    (path / "mixture.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return read_run(path)


def texts_inside(fig) -> None:
    """Every drawn text lies inside the figure (tick labels: those of ticks inside the view)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks = {
        id(t)
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for tick in axis.majorTicks + axis.minorTicks
        for t in (tick.label1, tick.label2)
    }
    texts = [t for t in fig.findobj(Text) if id(t) not in ticks]
    for ax in fig.axes:
        if ax.get_visible():
            for axis in (ax.xaxis, ax.yaxis):
                lo, hi = sorted(axis.get_view_interval())
                texts += [t for t, loc in zip(axis.get_ticklabels(), axis.get_ticklocs()) if lo <= loc <= hi]
    box = fig.bbox
    for text in texts:
        if (
            not text.get_visible()
            or not text.get_text().strip()
            or (text.axes is not None and not text.axes.get_visible())
        ):
            continue
        extent = text.get_window_extent(renderer)
        inside = (
            extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1 and extent.y0 >= box.y0 - 1 and extent.y1 <= box.y1 + 1
        )
        assert inside, f"{text.get_text()!r} at {extent} is cut off by {box}"


@pytest.mark.parametrize("n", [2, 4, 15, pytest.param(50, marks=pytest.mark.slow)])
def test_noise_plot_is_readable_and_draws_what_was_logged(make_run, n):
    run = with_noise(make_run(n, updates=12), skip=(3,))
    fig = noise_figure(run)
    snr_axes = fig.axes[0]
    logged = [r["noise"]["snr"] for r in run.records if r["noise"] is not None]
    points = np.concatenate([np.asarray(c.get_offsets())[:, 1] for c in snr_axes.collections if len(c.get_offsets())])
    assert sorted(points) == pytest.approx(sorted(np.clip(logged, 0.05, 100.0)))
    assert len(points) == 11  # the update that logged no noise is left out
    visible = [ax for ax in fig.axes[1:] if ax.get_visible()]
    if n <= ONE_AXES:
        lines = visible[0].get_lines()[:n]
        last = run.records[-1]["noise"]
        deviation = np.array(last["scores"]) - np.mean(last["scores"])
        assert [line.get_ydata()[-1] for line in lines] == pytest.approx(deviation)
        assert len(visible[0].collections) == n  # one ±SE band per dataset
    else:
        assert len(visible) == n  # a panel per dataset
    texts_inside(fig)
    width, height = fig.get_size_inches()
    assert width <= MAX_INCHES and height <= MAX_INCHES


def test_no_plot_without_logged_noise_and_the_report_shows_it_when_there_is(make_run):
    bare = make_run(4)
    assert noise_figure(read_run(bare)) is None  # its records carry a noise field of another shape
    assert "noise.png" not in [p.name for p in plot_run(bare)]
    path = make_run(4)
    with_noise(path)
    page = write_report(path).read_text()
    assert 'alt="noise"' in page and "signal-to-noise ratio" in page
