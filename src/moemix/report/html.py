"""A self-contained report.html of a run: a header in words, the weights table, the plots embedded as data
URIs, and every update's weights."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from moemix.files import write_text_atomic
from moemix.report.dev_loss_plot import dev_loss_points, measured_at_updates
from moemix.report.header import summary_items, weights_table
from moemix.report.plots import plot_run
from moemix.report.run_folder import RunFolder, read_run
from moemix.report.styles import HIGHLIGHT_ABOVE, HIGHLIGHTED

_CAPTIONS = {
    "weights.png": "Sampling weight of each dataset over training; each update holds until the next. The legend "
    "lists the datasets by final weight.",
    "loads.png": "Share of the probed MoE layer's top-k choices going to each expert, per dataset, at the last update.",
    "distances.png": "Distances between the datasets' gate loads at the last update: the larger a row, the more "
    "a dataset routes unlike the others, and the more weight the dynamic update gives it.",
    "noise.png": "How far each update's routing signal stood above its sampling noise (a bootstrap over the probe "
    "examples or the groups of training sequences). Top: the signal-to-noise ratio; below 1 (orange) another "
    "sample of the same data could have moved the weights another way. Below: each dataset's score minus the mean "
    "score, what moves its weight, with a band of one standard error either side.",
    "realised.png": "Share of draws each dataset received, against the time-averaged target weight.",
    "dev_loss.png": "Dev loss per dataset at the start (hollow) and the end (filled) of training, on the "
    "evaluation batches; beside each row: start → end (change).",
}
_DEV_LOSS_CURVES = (
    "Dev loss per dataset over training: at the start and the end on the evaluation batches, and "
    "at each update on the probe batches (the policy measured it there)."
)
_BAR_COLUMNS = ("final weight",)  # a bar behind the number: the table reads as a chart at 50 datasets

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1500px; margin: 2em auto; padding: 0 2em; color: #222; }
p, dl, figcaption { max-width: 80ch; }
h1 { margin-bottom: 0.2em; } .path { color: #666; margin-top: 0; font-family: monospace; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 0.25em 1.5em; }
dl.summary dt { font-weight: 600; } dl.summary dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
td, th { border: 1px solid #ccc; padding: 3px 10px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; vertical-align: bottom; }
td:first-child, th:first-child { text-align: left; }
td:first-child { white-space: normal; overflow-wrap: anywhere; min-width: 12em; max-width: 24em; }
td.bar { background-repeat: no-repeat; background-size: var(--w) 70%; background-position: left center;
         background-image: linear-gradient(#cfe0f3, #cfe0f3); }
figure { margin: 2em 0; } img { max-width: 100%; height: auto; } figcaption { color: #555; font-size: 0.9em; }
"""


def _table(rows: list[list[str]], bars: tuple[str, ...] = ()) -> str:
    header = rows[0]
    widths: dict[int, float] = {}
    for index, name in enumerate(header):
        if name in bars:
            values = [float(r[index]) for r in rows[1:] if r[index]]
            widths[index] = max(values, default=0.0) or 1.0
    head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = []
    for row in rows[1:]:
        cells = []
        for index, cell in enumerate(row):
            if index in widths and cell:
                share = 100 * float(cell) / widths[index]
                cells.append(f'<td class="bar" style="--w: {share:.1f}%">{html.escape(cell)}</td>')
            else:
                cells.append(f"<td>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _caption(name: str, run: RunFolder) -> str:
    datasets = len(run.names)
    text = _CAPTIONS.get(name, name)
    if name == "dev_loss.png" and measured_at_updates(dev_loss_points(run)):
        text = _DEV_LOSS_CURVES
    if name == "weights.png" and datasets > HIGHLIGHT_ABOVE:
        text += (
            f" With {datasets} datasets the {HIGHLIGHTED} largest final weights are coloured and the others "
            "drawn in grey; the table above has every weight."
        )
    return text


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` (one file, no external resources) and its plots; returns the report's path.

    Raises:
        MoemixError: if the folder holds no mixture log.
    """
    run = read_run(run_dir)
    plots = plot_run(run.path)
    names = run.names
    summary = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>" for label, value in summary_items(run)
    )
    figures = []
    for path in plots:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = html.escape(_caption(path.name, run))
        figures.append(
            f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    updates = [["step"] + names] + [[str(r["step"])] + [f"{r['weights'][n]:.4f}" for n in names] for r in run.records]
    title = html.escape(run.path.resolve().name)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moemix run {title}</title>
<style>{_STYLE}</style></head><body>
<h1>moemix run {title}</h1>
<p class="path">{html.escape(str(run.path.resolve()))}</p>
<dl class="summary">{summary}</dl>
<h2>Final weights</h2>
<p>Datasets in the order the run mixes them. Start and final weights are the sampling weights before the first
and after the last update; the time-averaged weight counts each weight for the steps it held.</p>
{_table(weights_table(run), _BAR_COLUMNS)}
<h2>Plots</h2>{"".join(figures)}
<details><summary><h2 style="display: inline">Every update</h2> ({len(run.records)} updates)</summary>
{_table(updates)}
</details>
</body></html>
"""
    out = run.path / "report.html"
    write_text_atomic(out, page)
    return out
