"""The CLI's training recipe: a config in, a prepared run out, built in named steps that read top to bottom.

Arguments are built and checked first (a bad value or a launch that would not train one model stops before
anything loads), then the run folder is locked, then data, model, mixture and signals are built, each
collaborator before what uses it, and handed to the constructors. Nothing already in the run folder changes
until every step has passed: a run that fails on the way leaves the folder as it found it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import transformers
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainingArguments

from moemix.config import Config, dump_config, where_set
from moemix.data.feed import MixtureFeed, TicketDataset, collate_tickets
from moemix.data.load import TokenizedSplit, load_data, training_texts
from moemix.data.mixture import MixtureCollator, MixtureDataset, fixed_batches
from moemix.data.packing import PackingCollator
from moemix.data.sampler import MixtureSampler
from moemix.files import write_text_atomic
from moemix.mixing import MixingPolicy
from moemix.models import build_tokenizer, check_model_source, load_model
from moemix.models.prefix import FrozenPrefix
from moemix.train.arguments import TRAINING_DEFAULTS, training_arguments
from moemix.train.budget import TokenTotals
from moemix.train.callback import MixingCallback
from moemix.train.checkpoint import (
    CheckpointCallback,
    check_unchanged,
    fingerprint,
    load_state,
    resolve_resume,
    restart_log,
)
from moemix.train.folder import RunFolder
from moemix.train.freeze import freeze_routers
from moemix.train.launch import check_distributed, check_launch, join_deepspeed
from moemix.train.online import OnlineExpertCounts, check_routing
from moemix.train.policies import build_policy
from moemix.train.prepared import PreparedRun, RunResult
from moemix.train.scalars import PendingScalars
from moemix.train.state import MixtureState
from moemix.train.trainer import MixtureTrainer, ticket_count
from moemix.train.update_noise import online_units
from moemix.train.window_loss import WindowLoss

__all__ = [
    "RUN_CONFIG",
    "TRAINING_DEFAULTS",
    "PreparedRun",
    "RunResult",
    "prepare_run",
    "run_training",
    "training_arguments",
]

RUN_CONFIG = "run_config.yaml"
"""The resolved config each run writes into its folder (see :func:`moemix.config.dump_config`)."""


def prepare_run(config: Config) -> PreparedRun:
    """Build tokenizer, data, model, sampler, Trainer and the mixing callback from a config.

    Args:
        config: The run's config.

    Returns:
        The run, ready to ``train()``; it holds the lock of ``config.output_dir`` until then.

    Raises:
        MoemixError: For bad data, config, model or launch, or an output folder in use (before anything is
            trained; a folder this call created is removed again).
    """
    started = time.perf_counter()
    transformers.set_seed(config.seed)
    args = _setup_args(config)
    folder = RunFolder.open(config.output_dir, main=args.process_index == 0)
    try:
        resume = resolve_resume(config.training.get("resume_from_checkpoint"), folder.path)
        if resume is not None:  # a changed mixture or a damaged state stops here, before anything loads
            check_unchanged(resume, load_state(resume), fingerprint(config), config.allow_mixture_change)
        data = _setup_data(config)
        model = _setup_model(config, data.tokenizer)
        policy = build_policy(config, data.names, data.train, data.tokenizer, args.max_steps)
        initial = policy.initial_weights(len(data.names))
        sampler = MixtureSampler([len(s) for s in data.train], initial, seed=config.seed)
        eval_batches, probe = _setup_batches(config, args, data, policy, model)
        trainer, callback, mixture, tokens = _setup_trainer(config, args, data, model, policy, sampler, probe, folder)
        resumed_step = 0
        if resume is not None:
            resumed_step = mixture.restore(resume, allow_change=config.allow_mixture_change)["step"]
        _start_logs(config, args, folder.path, resume, resumed_step)
        folder.remove_torn_checkpoints()
    except BaseException:
        folder.abandon()
        raise
    return PreparedRun(
        config, trainer, sampler, callback, mixture, data.names, initial, eval_batches, started, tokens, folder, resume
    )


def run_training(config: Config) -> RunResult:
    """Train with dynamic data mixing; writes ``mixture.jsonl``, ``metrics.json`` and the model in the run folder.

    Raises:
        MoemixError: for bad data, config or model (before anything is trained).
    """
    return prepare_run(config).train()


def _setup_args(config: Config) -> TrainingArguments:
    """``TrainingArguments``, a launch that trains one model and a model that exists: checked before anything
    loads."""
    check_launch(config.training)
    args = training_arguments(config)
    check_distributed(args)
    join_deepspeed(args)
    check_model_source(config.model, lambda path: where_set(config, path))
    return args


@dataclass
class _Data:
    tokenizer: PreTrainedTokenizerBase
    names: list[str]
    train: list[TokenizedSplit]
    dev: list[TokenizedSplit]
    collator: MixtureCollator


def _setup_data(config: Config) -> _Data:
    """The tokenizer, then every dataset checked, split and tokenised (or read from the cache)."""
    tokenizer = build_tokenizer(config.model, lambda: training_texts(config))
    loaded = load_data(config, tokenizer)
    names = [ds.name for ds in config.datasets]
    collator = MixtureCollator(pad_token_id=tokenizer.pad_token_id)
    return _Data(tokenizer, names, [item.train for item in loaded], [item.dev for item in loaded], collator)


def _setup_model(config: Config, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """The model, its MoE layers checked readable before any data is drawn, routers frozen if asked."""
    model = load_model(config.model, tokenizer)
    check_routing(model, config.mixing.layers, config.mixing.router_module)
    if config.mixing.freeze_router:
        freeze_routers(model, config.mixing.router_module)
    return model


def _setup_batches(
    config: Config, args: TrainingArguments, data: _Data, policy: MixingPolicy, model: PreTrainedModel
) -> tuple[dict[str, list], list[list]]:
    """The fixed dev batches of the final evaluation, and those the routing probe reads at each update.

    They are the same at every update, so with the lower layers frozen (``model.trainable_layers``) their
    output there is recorded once and replayed (:class:`moemix.models.prefix.FrozenPrefix`): probes and dev
    losses run only the trained layers. A model that trains every layer runs them whole, as before.
    """
    prefix = FrozenPrefix(model)
    eval_batches = {
        name: prefix.batches(fixed_batches(dev, args.per_device_eval_batch_size, config.eval_batches, data.collator))
        for name, dev in zip(data.names, data.dev)
    }
    if "dev_loss" in policy.needs:
        # A dev-loss signal is set against reference losses, which a finished run gives as its final dev loss
        # over the eval batches: measure the signal on those same examples, or the excess is sampling noise.
        return eval_batches, [eval_batches[name] for name in data.names]
    if config.mixing.source == "online":
        return eval_batches, [[] for _ in data.dev]  # the training forwards are the signal: nothing to probe
    size = config.mixing.probe_batch_size or args.per_device_eval_batch_size
    probe = [prefix.batches(fixed_batches(dev, size, config.mixing.probe_batches, data.collator)) for dev in data.dev]
    return eval_batches, probe


def _setup_feed(
    config: Config, args: TrainingArguments, data: _Data, sampler: MixtureSampler
) -> tuple[MixtureFeed, int]:
    """The feed that resolves each optimizer step's draws, and how many tickets pace the Trainer's loop."""
    collator = PackingCollator(data.tokenizer.pad_token_id, config.max_length) if config.data.packing else data.collator
    feed = MixtureFeed(
        sampler,
        MixtureDataset(data.train),
        collator,
        batch_size=args.per_device_train_batch_size,
        world_size=args.world_size,
        rank=args.process_index,
        record=config.log_draws,
    )
    return feed, ticket_count(args, sum(len(s) for s in data.train))


@dataclass
class _Signals:
    online_counts: OnlineExpertCounts | None
    window_loss: WindowLoss | None
    scalars: PendingScalars


def _setup_signals(
    config: Config, args: TrainingArguments, model: PreTrainedModel, policy: MixingPolicy, n: int
) -> _Signals:
    """What the mixing callback reads and the trainer fills, built before both: the routing of the training
    forwards (``mixing.source: online``), the per-dataset training loss (policies that read it), and the
    update's scalars on their way to the logs."""
    mixing = config.mixing
    online = None
    if mixing.source == "online":
        online = OnlineExpertCounts(
            model, n, mixing.layers, mixing.router_module, mixing.count_prompt_tokens, units=online_units(n, policy)
        )
    window_loss = WindowLoss(n, args.device) if "train_loss" in policy.needs else None
    return _Signals(online, window_loss, PendingScalars())


def _setup_trainer(
    config: Config,
    args: TrainingArguments,
    data: _Data,
    model: PreTrainedModel,
    policy: MixingPolicy,
    sampler: MixtureSampler,
    probe: list[list],
    folder: RunFolder,
) -> tuple[MixtureTrainer, MixingCallback, MixtureState, TokenTotals]:
    """The mixing callback and the trainer, handed the collaborators they share; then the callbacks that read
    the trainer's own state (tokens counted in its steps, its loss accumulators)."""
    mixing, out, n = config.mixing, folder.path, len(data.names)
    feed, tickets = _setup_feed(config, args, data, sampler)
    signals = _setup_signals(config, args, model, policy, n)
    callback = MixingCallback.from_config(
        mixing,
        data.names,
        policy,
        sampler,
        probe,
        out / "mixture.jsonl",
        source=signals.online_counts,
        window_loss=signals.window_loss,
        scalars=signals.scalars,
    )
    trainer = MixtureTrainer(
        model=model,
        args=args,
        train_dataset=TicketDataset(tickets),
        data_collator=collate_tickets,
        processing_class=data.tokenizer,
        callbacks=[callback],
        feed=feed,
        num_datasets=n,
        online_counts=signals.online_counts,
        window_loss=signals.window_loss,
        scalars=signals.scalars,
    )
    tokens = TokenTotals(trainer, config.max_tokens)
    trainer.add_callback(tokens)
    mixture = MixtureState(data.names, fingerprint(config), sampler, callback, tokens, signals.online_counts, trainer)
    trainer.add_callback(CheckpointCallback(mixture.state_dict, feed, _draw_log(config, args, out)))
    return trainer, callback, mixture, tokens


def _draw_log(config: Config, args: TrainingArguments, out: Path) -> Path | None:
    if not config.log_draws:
        return None
    rank = args.process_index
    return out / ("draws.jsonl" if rank == 0 else f"draws.rank{rank}.jsonl")


def _start_logs(config: Config, args: TrainingArguments, out: Path, resume: Path | None, resumed_step: int) -> None:
    """Once every check has passed: a fresh run starts fresh logs, a resumed one drops what followed its
    checkpoint; and the run's resolved config is written for eval, compare and the next person."""
    main = args.process_index == 0
    draw_log = _draw_log(config, args, out)
    if resume is None:
        if main:
            for path in (out / "mixture.jsonl", *out.glob("draws*.jsonl")):
                restart_log(path, None)
    else:
        if main:
            restart_log(out / "mixture.jsonl", resumed_step)
        if draw_log is not None:
            restart_log(draw_log, resumed_step)
    if main:
        write_text_atomic(out / RUN_CONFIG, dump_config(config))
