"""Wire a config into a training run: data, model, sampler, Trainer, the mixing callback, final metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import TrainingArguments

from moemix.config import Config
from moemix.data.load import TokenizedSplit, iter_messages, load_splits, split_records
from moemix.data.feed import MixtureFeed, TicketDataset, collate_tickets
from moemix.data.mixture import MixtureCollator, MixtureDataset, fixed_batches
from moemix.data.sampler import MixtureSampler
from moemix.errors import ConfigError
from moemix.mixing import from_state
from moemix.models import build_tokenizer, load_model
from moemix.train.callback import MixingCallback
from moemix.train.evaluate import dev_losses
from moemix.files import write_json_atomic
from moemix.train.trainer import MixtureTrainer

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
    if not torch.cuda.is_available():
        kwargs.setdefault("dataloader_pin_memory", False)  # pinning needs an accelerator; avoids torch's warning
    kwargs["output_dir"] = config.output_dir
    kwargs.setdefault("seed", config.seed)
    if kwargs.get("remove_unused_columns"):
        raise ConfigError("training.remove_unused_columns: must be false (batches carry dataset ids)")
    try:
        return TrainingArguments(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"training: {str(err).splitlines()[0]}") from None


def _texts(config: Config):
    """Every message text of the training splits: what a ``builtin`` tokenizer is trained on."""
    for ds in config.datasets:
        train, _ = split_records(ds, config.seed)
        for messages in iter_messages(ds, train):
            for message in messages:
                yield message["content"]


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

    def train(self) -> RunResult:
        """Train, then write ``metrics.json``, ``mixture_state.json`` and the model into the run folder."""
        trainer, names, out = self.trainer, self.names, Path(self.config.output_dir)
        initial_loss = dev_losses(trainer.model, self.eval_batches)
        train_output = trainer.train()
        final_loss = dev_losses(trainer.model, self.eval_batches)
        tokens = trainer.tokens_seen.cpu().tolist()
        metrics = {f"eval/{name}/loss": final_loss[name] for name in names}
        metrics |= {f"eval_initial/{name}/loss": initial_loss[name] for name in names}
        metrics |= {
            "eval/mean_loss": float(np.mean([final_loss[n] for n in names])),
            "weights": {name: float(w) for name, w in zip(names, self.sampler.weights)},
            "tokens_seen": {name: int(t) for name, t in zip(names, tokens)},
            "draws": {name: int(c) for name, c in zip(names, self.sampler.counts)},
            "train_loss": float(train_output.training_loss),
            "global_step": int(trainer.state.global_step),
            "updates": len(self.callback.history),
            "wall_time_s": round(time.perf_counter() - self.started, 2),
        }
        if trainer.is_world_process_zero():
            trainer.save_model(str(out / "model"))
            state = {
                "names": names,
                "policy": self.callback.policy.state_dict(),
                "sampler": self.sampler.state_dict(),
                "history": self.callback.history,
            }
            write_json_atomic(out / "mixture_state.json", state)
            write_json_atomic(out / "metrics.json", metrics)
        initial = {n: float(w) for n, w in zip(names, self.initial_weights)}
        return RunResult(out, metrics, names, initial, len(self.callback.history))


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
    tokenizer = build_tokenizer(config.model, lambda: _texts(config))

    names = [ds.name for ds in config.datasets]
    train_splits: list[TokenizedSplit] = []
    dev_splits: list[TokenizedSplit] = []
    for ds in config.datasets:
        train, dev = load_splits(ds, tokenizer, config.max_length, config.seed)
        train_splits.append(train)
        dev_splits.append(dev)

    model = load_model(config.model, tokenizer)
    policy = from_state(_policy_state(config, names))
    initial = policy.initial_weights(len(names))

    sampler = MixtureSampler([len(s) for s in train_splits], initial, seed=config.seed)
    collator = MixtureCollator(pad_token_id=tokenizer.pad_token_id)
    feed = MixtureFeed(
        sampler,
        MixtureDataset(train_splits),
        collator,
        batch_size=args.per_device_train_batch_size,
        world_size=args.world_size,
        rank=args.process_index,
    )
    # Tickets only pace the Trainer's loop (an "epoch" is one pass's worth of draws); the feed picks the data.
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    tickets = args.max_steps * per_step if args.max_steps > 0 else sum(len(s) for s in train_splits)

    probe_size = config.mixing.probe_batch_size or args.per_device_eval_batch_size
    probe = [list(fixed_batches(dev, probe_size, config.mixing.probe_batches, collator)) for dev in dev_splits]
    eval_batches = {
        name: list(fixed_batches(dev, args.per_device_eval_batch_size, config.eval_batches, collator))
        for name, dev in zip(names, dev_splits)
    }

    log_path = out / "mixture.jsonl"
    log_path.unlink(missing_ok=True)  # a fresh run starts a fresh log
    callback = MixingCallback(names, policy, sampler, probe, config.mixing.interval, log_path, config.mixing.layer)
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
    return PreparedRun(config, trainer, sampler, callback, names, initial, eval_batches, started)


def _policy_state(config: Config, names: list[str]) -> dict:
    """The policy's constructor arguments from the config's mixing section, weights in dataset order."""
    mixing = config.mixing
    weights = None if mixing.weights is None else [mixing.weights[name] for name in names]
    if mixing.policy == "dynamic":
        return {"name": "dynamic", "eta": mixing.eta, "c": mixing.c, "weights": weights}
    if mixing.policy == "static":
        return {"name": "static", "weights": weights}
    return {"name": mixing.policy}


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
