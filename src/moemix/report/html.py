"""A self-contained report.html of a run: plots embedded as data URIs, tables of weights and dev loss."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from moemix.report.plots import plot_run, read_run
from moemix.files import write_text_atomic

_CAPTIONS = {
    "weights.png": "Sampling weight of each dataset over training.",
    "loads.png": "Share of the last MoE layer's top-k choices going to each expert, per dataset, at the last update.",
    "distances.png": "Distances between the datasets' gate loads at the last update: the larger a row, the more "
    "a dataset routes unlike the others, and the more weight the dynamic update gives it.",
    "realised.png": "Share of draws each dataset received, against the time-averaged target weight.",
    "dev_loss.png": "Dev loss per dataset over training.",
}


def _table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` (one file, no external resources) and its plots; returns the report's path.

    Raises:
        MoemixError: if the folder holds no mixture log.
    """
    run_dir = Path(run_dir)
    records, metrics = read_run(run_dir)
    plots = plot_run(run_dir)
    names = list(records[-1]["weights"])
    rows = [["dataset", "final weight", "dev loss start", "dev loss end", "tokens seen"]]
    for name in names:
        rows.append([
            name,
            f"{records[-1]['weights'][name]:.4f}",
            f"{metrics[f'eval_initial/{name}/loss']:.4f}" if f"eval_initial/{name}/loss" in metrics else "",
            f"{metrics[f'eval/{name}/loss']:.4f}" if f"eval/{name}/loss" in metrics else "",
            f"{metrics.get('tokens_seen', {}).get(name, '')}",
        ])
    updates = [["step"] + names] + [[str(r["step"])] + [f"{r['weights'][n]:.4f}" for n in names] for r in records]
    figures = []
    for path in plots:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = html.escape(_CAPTIONS.get(path.name, path.name))
        figures.append(f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')
    summary = {k: metrics[k] for k in ("global_step", "updates", "train_loss", "wall_time_s") if k in metrics}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moemix run {html.escape(run_dir.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>moemix run: {html.escape(str(run_dir))}</h1>
<p>{html.escape(json.dumps(summary))}</p>
<h2>Datasets</h2>{_table(rows)}
<h2>Plots</h2>{''.join(figures)}
<h2>Every update</h2>{_table(updates)}
</body></html>
"""
    out = run_dir / "report.html"
    write_text_atomic(out, page)
    return out
