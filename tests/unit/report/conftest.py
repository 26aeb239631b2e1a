"""Fixtures: run folders written as a training run writes them (train/callback.py, train/run.py), untrained.

The weights follow the paper's update (``moemix.mixing.DynamicPolicy``) on gate loads that drift apart, so
trajectories rise, fall and cross as in a real run; the names mix short and long task names as a user's
P3/FLAN-style mix does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moemix.config import dump_config, load_config
from moemix.files import append_jsonl, write_json_atomic, write_text_atomic
from moemix.mixing import DynamicPolicy, Signals, pairwise_l2

FIRST = ["chat_alpaca_history", "flan_cot", "math_mc", "code_response"]
TASKS = [
    "super_glue_wsc.fixed_does_the_pronoun_refer_to",
    "cosmos_qa",
    "hellaswag_complete_first_then",
    "piqa",
    "winogrande_xl_fill_in_the_blank",
    "anli_r1",
    "rte",
    "copa",
    "wic",
    "story_cloze_2016",
    "quail",
    "quartz",
    "social_i_qa_show_choices_and_generate_answer",
    "wiqa",
    "ropes",
    "sciq",
    "qasc",
    "dream",
    "cos_e_v1.11_rationale",
    "imdb",
    "rotten_tomatoes",
    "yelp_review_full",
    "amazon_polarity",
    "ag_news",
    "dbpedia_14_given_a_list_of_category",
    "trec",
    "paws_labeled_final",
    "qqp",
    "mrpc",
    "xsum_summarize_this_DOC_summary",
    "cnn_dailymail_3.0.0_news_summary",
    "gigaword",
    "samsum",
    "multi_news",
    "wiki_bio",
    "common_gen",
    "duorc_ParaphraseRC",
    "adversarial_qa_dbidaf",
    "quoref",
    "wiki_hop_original",
    "kilt_tasks_hotpotqa",
    "trivia_qa_unfiltered",
    "web_questions",
    "app_reviews",
    "glue_cola",
    "glue_sst2",
]


def dataset_names(n: int) -> list[str]:
    """``n`` distinct names: four hand-named sets, then ``t0_<task>`` names, some longer than a label fits."""
    names = (FIRST + [f"t0_{task}" for task in TASKS])[:n]
    assert len(names) == n, f"fake_runs knows {len(FIRST) + len(TASKS)} names, asked for {n}"
    return names


def write_fake_run(
    path: Path,
    n: int,
    updates: int = 30,
    interval: int = 20,
    experts: int = 8,
    periodic_dev_loss: bool = False,
    finished: bool = True,
    policy: str = "dynamic",
    seed: int = 0,
) -> Path:
    """Write ``mixture.jsonl``, ``run_config.yaml`` and (``finished``) ``metrics.json`` into ``path``.

    Args:
        path: the run folder (created).
        n: number of datasets.
        updates: mixture updates, one every ``interval`` steps.
        experts: experts of the probed layer (the width of each load row).
        periodic_dev_loss: log ``dev_loss`` at every update, as the ``refloss`` policy does.
        finished: write ``metrics.json`` (a run still training has none).
        policy: ``dynamic`` (the weights move) or ``uniform`` (every line lies on the others).
        seed: seed of the fake gate loads and losses.

    Returns:
        ``path``.
    """
    rng = np.random.default_rng(seed)
    names = dataset_names(n)
    path.mkdir(parents=True, exist_ok=True)
    entries = "\n".join(f'  - {{name: "{name}", path: "data/{name}.jsonl"}}' for name in names)
    config = load_config(
        text=f"""
datasets:
{entries}
model: {{tiny: mixtral, tokenizer: builtin, vocab_size: 2048, tiny_config: {{num_local_experts: {experts}}}}}
mixing: {{policy: {policy}, interval: {interval}, eta: 10.0, c: 0.05}}
training: {{max_steps: {updates * interval}, per_device_train_batch_size: 8}}
""",
        overrides=[f"--output_dir={path}"],
    )
    write_text_atomic(path / "run_config.yaml", dump_config(config))

    # Each dataset routes around its own centre; the centres drift apart as training specialises experts.
    centres = rng.dirichlet(np.full(experts, 0.6), size=n)
    shared = rng.dirichlet(np.full(experts, 5.0))
    dynamic = DynamicPolicy(eta=10.0, c=0.05, distance="l2", criterion="mean", noise_aware=False, noise_z=1.0)
    weights = np.full(n, 1.0 / n)
    start_loss = 7.6 + rng.normal(0, 0.05, n)
    end_loss = rng.uniform(1.5, 5.0, n)
    log = path / "mixture.jsonl"
    held_weights = []
    for u in range(1, updates + 1):
        held_weights.append(weights)
        step = u * interval
        apart = min(1.0, u / updates * 1.5)
        loads = (1 - apart) * shared + apart * centres + rng.normal(0, 0.004, (n, experts))
        loads = np.clip(loads, 0, None)
        loads /= loads.sum(axis=1, keepdims=True)
        if policy == "dynamic":
            weights = dynamic.update(weights, Signals(step=step, loads=loads))
        record = {
            "step": step,
            "weights": {name: float(w) for name, w in zip(names, weights)},
            "loads": {name: row.tolist() for name, row in zip(names, loads)},
            "distances": pairwise_l2(loads).tolist(),
        }
        if periodic_dev_loss:
            progress = 1 - np.exp(-3 * u / updates)
            losses = start_loss + (end_loss - start_loss) * progress + rng.normal(0, 0.03, n)
            record["dev_loss"] = {name: float(v) for name, v in zip(names, losses)}
        record["noise"] = {"sd": 0.01}  # a field later versions may log: the report ignores unknown keys
        append_jsonl(log, record)

    if finished:
        steps = updates * interval
        held = np.array(held_weights).mean(axis=0)  # the sampler draws from the weights of the moment
        draws = rng.multinomial(steps * 8, held / held.sum())
        metrics = {f"eval/{name}/loss": float(v) for name, v in zip(names, end_loss)}
        metrics |= {f"eval_initial/{name}/loss": float(v) for name, v in zip(names, start_loss)}
        metrics |= {
            "eval/mean_loss": float(end_loss.mean()),
            "weights": {name: float(w) for name, w in zip(names, weights)},
            "initial_weights": {name: 1.0 / n for name in names},
            "tokens_seen": {name: int(d * 140) for name, d in zip(names, draws)},
            "draws": {name: int(d) for name, d in zip(names, draws)},
            "train_loss": 3.82,
            "global_step": steps,
            "updates": updates,
            "max_tokens": None,
            "wall_time_s": 3725.4,
        }
        write_json_atomic(path / "metrics.json", metrics)
    return path


@pytest.fixture
def make_run(tmp_path):
    """``make_run(n, **kwargs)``: a fresh run folder under ``tmp_path`` (see :func:`write_fake_run`)."""
    made = []

    def make(n: int, **kwargs) -> Path:
        made.append(n)
        return write_fake_run(tmp_path / f"run{len(made)}-n{n}", n, **kwargs)

    return make
