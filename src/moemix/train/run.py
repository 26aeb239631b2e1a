"""Wire a config into a training run: data, model, sampler, Trainer, the mixing callback, final metrics."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import TrainingArguments

from moemix.config import Config, dump_config
from moemix.data.load import TokenizedSplit, load_data, training_texts
from moemix.data.feed import MixtureFeed, TicketDataset, collate_tickets
from moemix.data.mixture import MixtureCollator, MixtureDataset, fixed_batches
from moemix.data.packing import PackingCollator
from moemix.data.sampler import MixtureSampler
from moemix.errors import ConfigError, MoemixError
from moemix.mixing import from_state
from moemix.models import build_tokenizer, load_model
from moemix.train.budget import TokenTotals
from moemix.train.callback import MixingCallback
from moemix.train.policies import build_policy
from moemix.train.window_loss import WindowLoss
from moemix.train.checkpoint import CheckpointCallback, changes, fingerprint, load_state, resolve_resume, truncate_log
from moemix.train.evaluate import dev_losses
from moemix.files import write_json_atomic, write_text_atomic
from moemix.train.freeze import freeze_routers
from moemix.train.online import OnlineExpertCounts, check_routing
from moemix.train.trainer import MixtureTrainer

logger = logging.getLogger(__name__)

RUN_CONFIG = "run_config.yaml"
"""The resolved config each run writes into its folder (see :func:`moemix.config.dump_config`)."""

# What moemix sets unless the config says otherwise: batches carry dataset ids (keep the columns), and
# nothing is reported to an online service by default (runs must work offline).
TRAINING_DEFAULTS = {"remove_unused_columns": False, "report_to": "none", "save_strategy": "no"}


@dataclass
class RunResult:
    """What a finished run produced."""

    output_dir: Path
    metrics: dict
    names: list[str]
    initial_weights: dict[str, float]
    updates: int


def training_arguments(config: Config) -> TrainingArguments:
    """Hugging Face ``TrainingArguments`` from the config's ``training`` section, with moemix's defaults."""
    kwargs = TRAINING_DEFAULTS | dict(config.training)
    kwargs.pop("resume_from_checkpoint", None)  # moemix resolves it (see checkpoint.resolve_resume)
    if not torch.cuda.is_available():
        kwargs.setdefault("dataloader_pin_memory", False)  # pinning needs an accelerator; avoids torch's warning
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            kwargs.setdefault("ddp_backend", "gloo")  # NCCL needs GPUs; set only when distributed (else it raises)
    kwargs["output_dir"] = config.output_dir
    kwargs.setdefault("seed", config.seed)
    if kwargs.get("remove_unused_columns"):
        raise ConfigError("training.remove_unused_columns: must be false (batches carry dataset ids)")
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"training: {str(err).splitlines()[0]}") from None


@dataclass
class PreparedRun:
    """Everything built for a run, before training: add callbacks to ``trainer`` here, then ``train()``."""

    config: Config
    trainer: MixtureTrainer
    sampler: MixtureSampler
    callback: MixingCallback
    names: list[str]
    initial_weights: np.ndarray
    eval_batches: dict[str, list]
    started: float
    tokens: TokenTotals
    resume: Path | None = None

    def train(self) -> RunResult:
        """Train, then write ``metrics.json``, ``mixture_state.json`` and the model into the run folder."""
        trainer, names, out = self.trainer, self.names, Path(self.config.output_dir)
        initial_loss = dev_losses(trainer.model, self.eval_batches)
        train_output = trainer.train(resume_from_checkpoint=str(self.resume) if self.resume else None)
        final_loss = dev_losses(trainer.model, self.eval_batches)
        tokens = self.tokens.sum_over_ranks().tolist()  # every rank's tokens, not only this rank's
        metrics = {f"eval/{name}/loss": final_loss[name] for name in names}
        metrics |= {f"eval_initial/{name}/loss": initial_loss[name] for name in names}
        metrics |= {
            "eval/mean_loss": float(np.mean([final_loss[n] for n in names])),
            "weights": {name: float(w) for name, w in zip(names, self.sampler.weights)},
            "initial_weights": {name: float(w) for name, w in zip(names, self.initial_weights)},
            "tokens_seen": {name: int(t) for name, t in zip(names, tokens)},
            "draws": {name: int(c) for name, c in zip(names, self.sampler.counts)},
            "train_loss": float(train_output.training_loss),
            "global_step": int(trainer.state.global_step),
            "updates": len(self.callback.history),
            "max_tokens": self.config.max_tokens,
            "wall_time_s": round(time.perf_counter() - self.started, 2),
        }
        if trainer.is_world_process_zero():
            trainer.save_model(str(out / "model"))
            write_json_atomic(out / "mixture_state.json", self.mixture_state())
            write_json_atomic(out / "metrics.json", metrics)
            if self.callback.history:
                from moemix.report import plot_run  # matplotlib: imported when plotting, not at every start

                plot_run(out)
        initial = {n: float(w) for n, w in zip(names, self.initial_weights)}
        return RunResult(out, metrics, names, initial, len(self.callback.history))

    def mixture_state(self) -> dict:
        """What a checkpoint needs to continue the mixture exactly: policy, sampler position, history."""
        return {
            "names": self.names,
            "fingerprint": fingerprint(self.config),
            "policy": self.callback.policy.state_dict(),
            "sampler": self.sampler.state_dict(),
            "history": self.callback.history,
            # the window in progress: online counts since the last update, and the loads EMA / carried loads
            "window_loads": self.callback.window.state_dict(),
            "online_counts": None if self.trainer.online_counts is None else self.trainer.online_counts.state_dict(),
            # tokens trained on per dataset, all ranks (summed when the checkpoint was due)
            "tokens_seen": self.tokens.totals.tolist(),
        }

    def restore(self, checkpoint: Path) -> None:
        """Continue from a checkpoint's mixture state; a changed mixture is an error unless allowed."""
        state = load_state(checkpoint)
        changed = changes(state["fingerprint"], fingerprint(self.config))
        if changed and not self.config.allow_mixture_change:
            raise MoemixError(
                f"{checkpoint}: the mixture changed since this checkpoint ({'; '.join(changed)}); "
                "pass --allow_mixture_change to resume anyway"
            )
        if changed:
            logger.warning("resuming %s with a changed mixture: %s", checkpoint, "; ".join(changed))
        if state["names"] == self.names and state["sampler"]["sizes"] == self.sampler.sizes:
            sampler_state = dict(state["sampler"], seed=self.sampler.seed)
            self.sampler.load_state_dict(sampler_state)
        else:  # datasets changed (allowed): carry weights over by name, new datasets get the mean weight
            old = dict(zip(state["names"], state["sampler"]["weights"]))
            mean = sum(old.values()) / len(old)
            carried = np.array([old.get(name, mean) for name in self.names])
            self.sampler.set_weights(carried / carried.sum())
        if not changed:
            self.callback.policy = from_state(state["policy"])
        self.callback.history = list(state["history"])
        if state["names"] == self.names and state.get("tokens_seen") is not None:
            self.tokens.restore(state["tokens_seen"])
        if not changed and state.get("window_loads") is not None:
            self.callback.window.load_state_dict(state["window_loads"])
        if not changed and state.get("online_counts") is not None and self.trainer.online_counts is not None:
            self.trainer.online_counts.load_state_dict(state["online_counts"])
        self.resume = checkpoint


def prepare_run(config: Config) -> PreparedRun:
    """Build tokenizer, data, model, sampler, Trainer and the mixing callback from a config.

    Raises:
        MoemixError: for bad data, config or model (before anything is trained).
    """
    started = time.perf_counter()
    transformers.set_seed(config.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = training_arguments(config)
    tokenizer = build_tokenizer(config.model, lambda: training_texts(config))

    names = [ds.name for ds in config.datasets]
    loaded = load_data(config, tokenizer)  # checked, split, tokenised (or read from the cache)
    train_splits: list[TokenizedSplit] = [item.train for item in loaded]
    dev_splits: list[TokenizedSplit] = [item.dev for item in loaded]

    model = load_model(config.model, tokenizer)
    check_routing(model, config.mixing.layers, config.mixing.router_module)  # before any data is drawn
    if config.mixing.freeze_router:
        freeze_routers(model, config.mixing.router_module)
    policy = build_policy(config, names, train_splits, tokenizer, args.max_steps)
    initial = policy.initial_weights(len(names))

    sampler = MixtureSampler([len(s) for s in train_splits], initial, seed=config.seed)
    collator = MixtureCollator(pad_token_id=tokenizer.pad_token_id)
    train_collator = PackingCollator(tokenizer.pad_token_id, config.max_length) if config.data.packing else collator
    feed = MixtureFeed(
        sampler,
        MixtureDataset(train_splits),
        train_collator,
        batch_size=args.per_device_train_batch_size,
        world_size=args.world_size,
        rank=args.process_index,
    )
    # Tickets only pace the Trainer's loop (an "epoch" is one pass's worth of draws); the feed picks the data.
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    tickets = args.max_steps * per_step if args.max_steps > 0 else sum(len(s) for s in train_splits)

    eval_batches = {
        name: list(fixed_batches(dev, args.per_device_eval_batch_size, config.eval_batches, collator))
        for name, dev in zip(names, dev_splits)
    }
    if "dev_loss" in policy.needs:
        # A dev-loss signal is set against reference losses, which a finished run gives as its final dev loss
        # over the eval batches: measure the signal on those same examples, or the excess is sampling noise.
        probe = [eval_batches[name] for name in names]
    elif config.mixing.source == "online":
        probe = [[] for _ in dev_splits]  # the training forwards are the routing signal: nothing to probe
    else:
        probe_size = config.mixing.probe_batch_size or args.per_device_eval_batch_size
        probe = [list(fixed_batches(dev, probe_size, config.mixing.probe_batches, collator)) for dev in dev_splits]

    log_path = out / "mixture.jsonl"
    rank = args.process_index
    draw_log = (out / ("draws.jsonl" if rank == 0 else f"draws.rank{rank}.jsonl")) if config.log_draws else None
    feed.record = draw_log is not None
    resume = resolve_resume(config.training.get("resume_from_checkpoint"), out)
    if resume is None and args.process_index == 0:  # a fresh run starts fresh logs
        for path in (log_path, *out.glob("draws*.jsonl")):
            path.unlink(missing_ok=True)
    if args.process_index == 0:  # what this run was asked to do, for eval, compare and the next person
        write_text_atomic(out / RUN_CONFIG, dump_config(config))
    mixing = config.mixing
    callback = MixingCallback(
        names,
        policy,
        sampler,
        probe,
        mixing.interval,
        log_path,
        mixing.layers,
        load_ema=mixing.load_ema,
        router_module=mixing.router_module,
        count_prompt_tokens=mixing.count_prompt_tokens,
        bounds=(mixing.floor, mixing.ceiling),
        collapse_warning=mixing.collapse_warning,
    )
    trainer = MixtureTrainer(
        model=model,
        args=args,
        train_dataset=TicketDataset(tickets),
        data_collator=collate_tickets,
        processing_class=tokenizer,
        callbacks=[callback],
        feed=feed,
        num_datasets=len(names),
    )
    if mixing.source == "online":
        trainer.online_counts = OnlineExpertCounts(
            model, len(names), mixing.layers, mixing.router_module, mixing.count_prompt_tokens
        )
        callback.source = trainer.online_counts
    if "train_loss" in policy.needs:
        trainer.window_loss = callback.window_loss = WindowLoss(len(names), args.device)
    callback.scalars = trainer.mixture_scalars
    tokens = TokenTotals(trainer, config.max_tokens)
    trainer.add_callback(tokens)
    run = PreparedRun(config, trainer, sampler, callback, names, initial, eval_batches, started, tokens)
    trainer.add_callback(CheckpointCallback(run.mixture_state, feed, draw_log))
    if resume is not None:
        run.restore(resume)
        step = load_state(resume)["step"]
        if args.process_index == 0:
            truncate_log(log_path, step)
        if draw_log is not None:
            truncate_log(draw_log, step)
    return run


def run_training(config: Config) -> RunResult:
    """Train with dynamic data mixing; writes ``mixture.jsonl``, ``metrics.json`` and the model in the run folder.

    Raises:
        MoemixError: for bad data, config or model (before anything is trained).
    """
    return prepare_run(config).train()


def quiet_libraries() -> None:
    """Keep the libraries' info chatter off the console; warnings still show."""
    transformers.logging.set_verbosity_warning()
    logging.getLogger("datasets").setLevel(logging.WARNING)
