"""The comparison summary: mean ± sd over seeds and the paired difference to uniform, overall and per seed."""

from __future__ import annotations

from moemix.report.summary import markdown, run_row


def row(strategy: str, seed: int, losses: dict[str, float], wall: float = 10.0) -> dict:
    metrics = {
        "weights": {name: 1 / len(losses) for name in losses},
        "tokens_seen": {name: 100 * seed for name in losses},
        "eval/mean_loss": sum(losses.values()) / len(losses),
        "global_step": 5,
        "wall_time_s": wall,
    } | {f"eval/{name}/loss": loss for name, loss in losses.items()}
    return run_row(strategy, seed, f"runs/{strategy}-{seed}", metrics)


def cells(text: str, strategy: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {strategy} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_paired_differences_per_seed_and_their_spread():
    rows = [
        row("uniform", 1, {"a": 1.0, "b": 3.0}),  # mean 2.0
        row("uniform", 2, {"a": 2.0, "b": 2.0}),  # mean 2.0
        row("dynamic", 1, {"a": 0.8, "b": 3.0}),  # mean 1.9: -0.1
        row("dynamic", 2, {"a": 2.2, "b": 2.2}),  # mean 2.2: +0.2
    ]
    text = markdown(rows)
    header = cells(text, "strategy")
    dynamic = dict(zip(header, cells(text, "dynamic")))
    assert dynamic["seeds"] == "2"
    assert dynamic["mean"] == "2.0500 ± 0.2121"
    assert dynamic["vs uniform"] == "0.0500 ± 0.2121"
    assert dynamic["vs uniform, per seed"] == "1: -0.1000, 2: +0.2000"
    # t_{0.975, 1} = 12.7062: 0.05 ± 12.7062 * 0.2121 / sqrt(2) = 0.05 ± 1.9059
    assert dynamic["95% CI (t)"] == "[-1.8559, +1.9559]"
    assert dynamic["95% CI (bootstrap)"] == "-"  # two seeds are too few to resample
    assert dynamic["excludes 0"] == "no"
    uniform = dict(zip(header, cells(text, "uniform")))
    assert uniform["vs uniform"] == "-" and uniform["vs uniform, per seed"] == "-"


def test_a_consistent_gain_over_five_seeds_is_marked_with_its_intervals():
    gains = [-0.10, -0.05, -0.12, -0.08, -0.06]
    rows = []
    for seed, gain in enumerate(gains, start=1):
        rows.append(row("uniform", seed, {"a": 2.0 + seed / 10, "b": 2.0}))
        rows.append(row("dynamic", seed, {"a": 2.0 + seed / 10 + 2 * gain, "b": 2.0}))
        rows.append(row("random", seed, {"a": 2.0 + seed / 10 + (0.05 if seed % 2 else -0.05), "b": 2.0}))
    text = markdown(rows)
    header = cells(text, "strategy")
    dynamic = dict(zip(header, cells(text, "dynamic")))
    random = dict(zip(header, cells(text, "random")))
    assert dynamic["excludes 0"] == "yes: lower"
    assert random["excludes 0"] == "no"
    low, high = (float(x) for x in dynamic["95% CI (bootstrap)"].strip("[]").split(","))
    assert -0.12 <= low < high <= -0.05
    assert float(dynamic["detectable"]) > 0


def test_a_seed_without_its_uniform_run_is_not_paired():
    rows = [
        row("uniform", 1, {"a": 1.0, "b": 1.0}),
        row("dynamic", 1, {"a": 2.0, "b": 2.0}),
        row("dynamic", 2, {"a": 0.0, "b": 0.0}),
    ]
    dynamic = dict(zip(cells(markdown(rows), "strategy"), cells(markdown(rows), "dynamic")))
    assert dynamic["vs uniform, per seed"] == "1: +1.0000"
    assert dynamic["vs uniform"] == "1.0000"
