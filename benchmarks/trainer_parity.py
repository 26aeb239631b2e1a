"""Tokens per second of moemix training against plain ``transformers.Trainer`` on the same model and batches.

One tiny Mixtral (hidden 128, 4 layers, 8 experts top-2, as the routing benchmark) fine-tuned on the four builtin
domains, batch 8, ``max_length`` 128, on the CPU. Four variants, run in interleaved rounds (each round in a
rotated order, so that machine noise falls on all of them alike):

- plain: ``transformers.Trainer`` with a ``MixtureCollator``, fed the examples that moemix's uniform mixture
  draws, in the same order (an iterable dataset, so the Trainer's own sampler does not reorder them);
- uniform: ``moemix`` with ``mixing.policy: uniform`` (the same batches: its training loss must equal plain's);
  its mixture log still carries the gate loads of every update, read by the default source, the probe;
- uniform-online: the same, the logged gate loads read from the training forwards (``mixing.source: online``);
- online: ``dynamic`` with ``mixing.source: online``;
- probe: ``dynamic`` with ``mixing.source: probe`` (5 dev batches of 8 per dataset at every update).

Every ``--interval`` steps the dynamic variants update the mixture, so after the first update they draw other
examples: their rate is per token, counted on every training forward (non-padding tokens, and padded ones). The
figure is the rate over the measured steps (after ``--warmup``), as tokens per second of the process's CPU time
(what a shared machine disturbs least, with one thread) and of wall time, median over rounds, and its ratio to
plain.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/trainer_parity.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/trainer_parity.py --quick   # < 3 min on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from cpu_run import CONFIG
from transformers import Trainer, TrainerCallback

from moemix.config import load_config
from moemix.data.mixture import MixtureCollator
from moemix.logs import quiet_libraries
from moemix.train import prepare_run
from moemix.train.arguments import training_arguments

VARIANTS = ("plain", "uniform", "uniform-online", "online", "probe")
OVERRIDES = {
    "plain": ["--mixing.policy=uniform"],
    "uniform": ["--mixing.policy=uniform"],
    "uniform-online": ["--mixing.policy=uniform", "--mixing.source=online"],
    "online": ["--mixing.source=online"],
    "probe": ["--mixing.source=probe"],
}


class DrawnExamples(torch.utils.data.IterableDataset):
    """The examples a moemix sampler draws, in its order, as plain ``{input_ids, labels}`` features."""

    def __init__(self, splits, draws: list[tuple[int, int]]):
        self.splits, self.draws = splits, draws

    def __iter__(self):
        for d, e in self.draws:
            yield {"input_ids": self.splits[d].input_ids[e], "labels": self.splits[d].labels[e]}


class Clock(TrainerCallback):
    """CPU and wall time, and tokens (real and padded) of the training forwards, at the end of every step."""

    def __init__(self, model: torch.nn.Module):
        self.cpu: list[float] = []
        self.wall: list[float] = []
        self.real: list[int] = []
        self.padded: list[int] = []
        self._real = self._padded = 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if module.training and mask is not None:
            self._real += int(mask.sum())
            self._padded += mask.numel()

    def on_step_end(self, args, state, control, **kwargs):
        self.cpu.append(time.process_time())
        self.wall.append(time.perf_counter())
        self.real.append(self._real)
        self.padded.append(self._padded)

    def rates(self, warmup: int) -> dict[str, float]:
        """Tokens per second over the steps after ``warmup``."""
        a, b = warmup - 1, len(self.cpu) - 1
        real, padded = self.real[b] - self.real[a], self.padded[b] - self.padded[a]
        cpu, wall = self.cpu[b] - self.cpu[a], self.wall[b] - self.wall[a]
        return {"cpu": real / cpu, "wall": real / wall, "padded_cpu": padded / cpu, "real": real}


def run_once(variant: str, steps: int, warmup: int, interval: int, out: Path) -> tuple[dict[str, float], float]:
    """Train one variant; return its token rates and training loss."""
    overrides = [f"--output_dir={out / variant}", f"--max_steps={warmup + steps}", f"--mixing.interval={interval}"]
    config = load_config(text=CONFIG, overrides=[*overrides, *OVERRIDES[variant]])
    prepared = prepare_run(config)
    if variant == "plain":
        # The same model (same seed) and the examples moemix's uniform sampler draws for these steps, in order.
        sampler, feed = prepared.sampler, prepared.trainer.feed
        draws = [sampler.draw() for _ in range((warmup + steps) * feed.batch_size)]
        trainer = Trainer(
            model=prepared.trainer.model,
            args=training_arguments(config),
            train_dataset=DrawnExamples(feed.dataset.splits, draws),
            data_collator=MixtureCollator(pad_token_id=feed.collator.pad_token_id),
        )
    else:
        trainer = prepared.trainer
    clock = Clock(trainer.model)
    trainer.add_callback(clock)  # last: the mixing update is inside the step
    loss = trainer.train().training_loss
    if variant != "plain" and prepared.trainer.online_counts is not None:
        prepared.trainer.online_counts.close()
    return clock.rates(warmup), loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="measured optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="steps run before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the variants")
    parser.add_argument("--interval", type=int, default=100, help="optimizer steps between mixture updates")
    parser.add_argument("--quick", action="store_true", help="a short run (under 3 min on 2 cores)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.rounds, args.interval = 30, 2, 2, 15
    quiet_libraries()

    rates: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for variant in order:
                rate, loss = run_once(variant, args.steps, args.warmup, args.interval, Path(tmp) / str(r))
                rates[variant].append(rate)
                print(
                    f"round {r + 1}/{args.rounds} {variant:>14}: {rate['cpu']:8.0f} tokens/s CPU, "
                    f"{rate['wall']:8.0f} tokens/s wall, {rate['real']} tokens, train loss {loss:.6f}",
                    flush=True,
                )

    print(
        f"\n{args.rounds} rounds x {args.steps} steps of 8 x <= 128 tokens (after {args.warmup} warm-up), mixture "
        f"update every {args.interval} steps; median over rounds; ratio to plain Trainer (higher is faster)"
    )
    print(
        f"{'variant':>14} {'tokens/s CPU':>13} {'ratio':>7} {'tokens/s wall':>14} {'ratio':>7} "
        f"{'padded/s CPU ratio':>19}"
    )
    base = {k: statistics.median(r[k] for r in rates["plain"]) for k in ("cpu", "wall", "padded_cpu")}
    for variant in VARIANTS:
        med = {k: statistics.median(r[k] for r in rates[variant]) for k in ("cpu", "wall", "padded_cpu")}
        print(
            f"{variant:>14} {med['cpu']:13.0f} {med['cpu'] / base['cpu']:7.3f} {med['wall']:14.0f} "
            f"{med['wall'] / base['wall']:7.3f} {med['padded_cpu'] / base['padded_cpu']:19.3f}"
        )


if __name__ == "__main__":
    main()
