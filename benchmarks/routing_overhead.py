"""Step time of the same training run with no mixing, with online routing counts, and with the paper's probe.

One tiny Mixtral (hidden 128, 4 layers, 8 experts top-2, as ``moemix demo``) fine-tuned on the four builtin
domains, batch 8, ``max_length`` 128, fixed seed and steps, on the CPU. Every variant trains on the same
batches: the policy is ``uniform``, so the signal is read and the update runs at every interval but the weights
(and so the draws and sequence lengths) stay the same; the training losses printed must agree. Three variants,
run in rounds, each round in a rotated order so that machine noise falls on all of them alike:

- none: no mixing callback, no counting (plain Hugging Face Trainer on the same batches);
- online: ``mixing.source: online``, every ``interval`` steps an update from the counted training forwards;
- probe: ``mixing.source: probe``, every ``interval`` steps ``probe_batches`` dev batches of each dataset.

For each run the step time is the time of the measured steps divided by their number (updates included, so
a probe every 100 steps is spread over its 100 steps), as CPU time of the process (what other processes on a
shared machine disturb least, with one thread) and as wall time; the script prints the median over rounds and
the ratio to ``none``. Differences of 1 % are below the run-to-run noise of a shared machine, so the online counting
work of one forward (the hook on the experts, then the scatter into the per-dataset counts) is also timed alone,
on the same model and batch size, and given as a share of the step.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/routing_overhead.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/routing_overhead.py --accumulation 8   # the paper's shape
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/routing_overhead.py --quick            # < 3 min, fewer steps
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/routing_overhead.py --breakdown        # where an update goes

Besides the whole-run ratios, the time of each mixture update (probe forwards, or reading the online counts, and
the policy update) is taken directly, between a clock before the mixing callback and one after it, and given as
a share of the plain training time: a figure that machine noise disturbs far less than a ratio of two runs.

``--breakdown`` only splits probe updates by where their CPU time goes (the model's experts, its attention, the
rest of its forward, and moemix's own work around the forwards), timed by hooks inside a training process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from cpu_run import CONFIG, StepClock, trained
from transformers import TrainerCallback

from moemix.config import load_config
from moemix.logs import quiet_libraries
from moemix.routing import find_moe_layers
from moemix.train import prepare_run
from moemix.train.online import OnlineExpertCounts

VARIANTS = ("none", "online", "probe")


class UpdateClock(TrainerCallback):
    """Placed just before the mixing callback: with the step clock after it, brackets each update."""

    def __init__(self, interval: int):
        self.interval = interval
        self.started: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step and state.global_step % self.interval == 0:
            self.started.append(time.process_time())


def run_once(
    variant: str, steps: int, warmup: int, out: Path, accumulation: int, interval: int
) -> tuple[float, float, float, int, float, float]:
    """Train one variant; return its mean CPU and wall seconds per measured step, train loss, updates, the
    mean CPU seconds of one update (timed between the clocks around the mixing callback), and the mean CPU
    seconds of the same run's steps without an update."""
    source = "probe" if variant == "none" else variant
    overrides = [
        f"--output_dir={out / variant}",
        f"--max_steps={warmup + steps}",
        "--mixing.policy=uniform",
        f"--mixing.source={source}",
        f"--mixing.interval={interval}",
        f"--gradient_accumulation_steps={accumulation}",
    ]
    prepared = prepare_run(load_config(text=CONFIG, overrides=overrides))
    callbacks = prepared.trainer.callback_handler.callbacks
    before = UpdateClock(interval)
    callbacks.insert(callbacks.index(prepared.callback), before)
    if variant == "none":
        prepared.trainer.remove_callback(prepared.callback)
    clock = StepClock()
    prepared.trainer.add_callback(clock)  # after the mixing callback: its update is inside the step
    loss = prepared.trainer.train().training_loss
    if prepared.trainer.online_counts is not None:
        prepared.trainer.online_counts.close()
    cpu, wall = clock.cpu[warmup - 1 :], clock.wall[warmup - 1 :]
    updates = 0 if variant == "none" else len(prepared.callback.history)
    ends = [clock.cpu[step - 1] for step in range(interval, warmup + steps + 1, interval)]
    update = statistics.mean(end - start for start, end in zip(before.started, ends)) if before.started else 0.0
    # Steps of this run that ran no update, timed by the same clock minutes apart at most: the baseline of the
    # same-run ratio, which drifts of a shared machine between runs do not reach.
    plain = [b - a for step, (a, b) in enumerate(zip(cpu, cpu[1:]), start=warmup + 1) if step % interval]
    return (cpu[-1] - cpu[0]) / steps, (wall[-1] - wall[0]) / steps, loss, updates, update, statistics.mean(plain)


def counting_cost(repeats: int) -> tuple[float, float, float]:
    """Seconds of the online counting work of one training forward, timed alone (median of ``repeats``).

    Returns ``(hook, bookkeeping, forward_backward)``: one call of the capture hook on the experts with the
    arguments of a real forward; the rest of the per-forward work (dataset of each token, one scatter into the
    counts, the checks) with the indices that hook records; and one forward+backward of the same batch.
    """
    from moemix.testing import tiny_moe

    model = tiny_moe(
        "mixtral", vocab_size=2048, hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_local_experts=8
    )
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 2048, (8, 128), generator=generator)
    mask = torch.ones_like(input_ids)
    mask[::2, 100:] = 0
    batch = {"input_ids": input_ids, "attention_mask": mask, "labels": input_ids.masked_fill(mask == 0, -100)}
    datasets = torch.arange(8) % 4
    experts = find_moe_layers(model)[-1].experts
    seen = []
    recorder = experts.register_forward_pre_hook(lambda m, a, k: seen.append((a, k)), with_kwargs=True)
    model.train()
    start = time.process_time()
    model(**batch).loss.backward()
    forward_backward = time.process_time() - start
    recorder.remove()
    args, kwargs = seen[0]

    online = OnlineExpertCounts(model, 4, layers="last")
    (capture,) = online.captures
    (hook,) = experts._forward_pre_hooks.values()
    hook_times, work_times = [], []
    for _ in range(repeats):
        capture.active = True  # as inside counting(), which switches it off again at its end
        start = time.perf_counter()
        hook(experts, args, kwargs)
        hook_times.append(time.perf_counter() - start)
        recorded = capture.take()
        start = time.perf_counter()
        with online.counting(batch, datasets):
            capture.indices.extend(recorded)  # what the hook leaves for the end of the forward
        work_times.append(time.perf_counter() - start)
    online.read()
    online.close()
    return statistics.median(hook_times), statistics.median(work_times), forward_backward


def breakdown(out: Path, updates: int, interval: int) -> None:
    """Split probe updates by where their CPU time goes, timed by hooks in the process that trained the model.

    The model trains 20 steps first (no update: the mixing interval is longer than the run), so that the
    probe meets the heap and caches of a training process; then ``updates`` probe updates run, each timed whole
    and by parts: every forward from its start to the moment the read layer's router has chosen (where the probe
    stops it), within it the experts of the layers before the read one and every attention module; the rest of
    the update (merging, counting, the noise estimate, the policy) is moemix's own work.
    """
    overrides = [
        f"--output_dir={out / 'breakdown'}",
        "--max_steps=20",
        "--mixing.policy=uniform",
        "--mixing.source=probe",
        "--mixing.interval=1000",
    ]
    prepared, step = trained(CONFIG, overrides, skip=10)
    model, callback = prepared.trainer.model, prepared.callback
    spent = {"forwards": 0.0, "experts": 0.0, "attention": 0.0}
    started: dict[str, float] = {}

    def begin(part: str):
        return lambda *_args: started.__setitem__(part, time.process_time())

    def end(part: str):
        return lambda *_args: spent.__setitem__(part, spent[part] + time.process_time() - started[part])

    moe = find_moe_layers(model)
    # Registered before the probe's own stop hook on the read layer's experts, so this one runs first.
    handles = [
        model.register_forward_pre_hook(begin("forwards")),
        moe[-1].experts.register_forward_pre_hook(end("forwards")),
    ]
    for layer in moe[:-1]:
        handles += [
            layer.experts.register_forward_pre_hook(begin("experts")),
            layer.experts.register_forward_hook(end("experts")),
        ]
    for module in model.modules():
        if type(module).__name__.endswith("Attention"):
            handles += [
                module.register_forward_pre_hook(begin("attention")),
                module.register_forward_hook(end("attention")),
            ]
    callback.update(0, model, write=False)  # plans the merged forwards, as a run's first update does
    spent.update(dict.fromkeys(spent, 0.0))  # the first update's times out; the hooks keep this dict
    start = time.process_time()
    for _ in range(updates):
        callback.update(0, model, write=False)
    total = (time.process_time() - start) / updates
    for handle in handles:
        handle.remove()
    part = {name: value / updates for name, value in spent.items()}
    tokens = sum(int(batch["attention_mask"].sum()) for batches in callback.probe_batches for batch in batches)
    rows = [
        ("the model's experts, layers before the read one", part["experts"]),
        ("the model's attention modules", part["attention"]),
        (
            "the rest of the model's forward (norms, rotary, routers, gathers)",
            part["forwards"] - part["experts"] - part["attention"],
        ),
        ("moemix's own work (merging, counting, noise estimate, policy)", total - part["forwards"]),
    ]
    print(
        f"\nwhere a probe update goes: {tokens:,} probe tokens, plain step {step * 1000:.1f} ms CPU (mean of 10), "
        f"mean of {updates} updates"
    )
    for name, seconds in rows:
        print(f"  {name:<68} {seconds * 1000:7.1f} ms  {seconds / total * 100:5.1f} %")
    print(
        f"  {'update':<68} {total * 1000:7.1f} ms  = {total / step:.2f} plain steps: ratio "
        f"{1 + total / (step * interval):.4f} at an update every {interval} steps; "
        f"{1 + part['forwards'] / (step * interval):.4f} with none of moemix's own work"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="measured optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="steps run before measuring")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the three variants")
    parser.add_argument("--repeats", type=int, default=1000, help="calls of the counting work timed alone")
    parser.add_argument("--interval", type=int, default=100, help="optimizer steps between updates")
    parser.add_argument("--accumulation", type=int, default=1, help="gradient accumulation steps (paper: 8)")
    parser.add_argument("--quick", action="store_true", help="a short run (under 3 min on 2 cores): fewer steps")
    parser.add_argument(
        "--breakdown", action="store_true", help="only split probe updates by where their time goes (< 1 min)"
    )
    parser.add_argument(
        "--timed-interval",
        type=int,
        default=100,
        help="interval the directly timed ratio is given for (default: the paper's 100)",
    )
    args = parser.parse_args()
    documented = args.timed_interval
    if args.quick:
        args.steps, args.warmup, args.rounds, args.repeats = max(60 // args.accumulation, 4), 2, 2, 100
        args.interval = max(args.steps // 2, 1)
    quiet_libraries()
    torch.manual_seed(0)
    if args.breakdown:
        with tempfile.TemporaryDirectory() as tmp:
            breakdown(Path(tmp), updates=5, interval=args.timed_interval)
        return

    cpu = {variant: [] for variant in VARIANTS}
    wall = {variant: [] for variant in VARIANTS}
    update_cpu = {variant: [] for variant in VARIANTS}
    same_run = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            order = VARIANTS[round_index % 3 :] + VARIANTS[: round_index % 3]
            for variant in order:
                step_cpu, step_wall, loss, updates, update, plain = run_once(
                    variant, args.steps, args.warmup, Path(tmp) / str(round_index), args.accumulation, args.interval
                )
                cpu[variant].append(step_cpu)
                wall[variant].append(step_wall)
                update_cpu[variant].append(update)
                same_run[variant].append(1 + update / (plain * documented))
                print(
                    f"round {round_index + 1}/{args.rounds} {variant:>6}: {step_cpu * 1000:7.2f} ms CPU, "
                    f"{step_wall * 1000:7.2f} ms wall per step, train loss {loss:.6f}, {updates} updates, "
                    f"{update * 1000:.1f} ms CPU per update, same-run ratio {same_run[variant][-1]:.4f}",
                    flush=True,
                )

    print(
        f"\n{args.rounds} rounds x {args.steps} steps (after {args.warmup} warm-up) of {args.accumulation} "
        f"micro-batch(es) of 8, update interval {args.interval}, probe 5 batches of 8 x 4 datasets; median over rounds"
    )
    print(
        f"{'variant':>8} {'CPU ms/step':>12} {'ratio':>7} {'wall ms/step':>13} {'ratio':>7} "
        f"{'CPU ms/update':>14} {'timed ratio':>12} {'same-run ratio':>15}"
    )
    base_cpu, base_wall = statistics.median(cpu["none"]), statistics.median(wall["none"])
    for variant in VARIANTS:
        c, w = statistics.median(cpu[variant]), statistics.median(wall[variant])
        u = statistics.median(update_cpu[variant]) if variant != "none" else 0.0
        # One update per documented interval, set against the plain training time of that many steps.
        share = u / (base_cpu * documented)
        same = statistics.median(same_run[variant]) if variant != "none" else 1.0
        print(
            f"{variant:>8} {c * 1000:12.2f} {c / base_cpu:7.3f} {w * 1000:13.2f} {w / base_wall:7.3f} "
            f"{u * 1000:14.1f} {1 + share:12.4f} {same:15.4f}"
        )
    print(
        f"timed ratio: 1 + (CPU time of one update) / (CPU time of {documented} plain steps), the cost of an update "
        f"every {documented} steps timed directly; same-run ratio: the same with the mean step of the same run "
        f"that ran no update as the plain step (median over rounds)"
    )

    hook, work, _ = counting_cost(args.repeats)
    base_cpu = statistics.median(cpu["none"])
    print(
        f"\ncounting work per training forward, timed alone (median of {args.repeats}): hook {hook * 1e6:.1f} us, "
        f"counting {work * 1e6:.1f} us; {(hook + work) / base_cpu * 100:.3f} % of a step "
        f"({base_cpu * 1000:.1f} ms CPU): ratio {1 + (hook + work) / base_cpu:.4f}"
    )


if __name__ == "__main__":
    main()
