"""moemix's dynamic data mixing inside a LLaMA-Factory SFT run.

Usage (in an environment with LLaMA-Factory installed; see docs/LLAMAFACTORY.md)::

    python -m moemix.integrations.llamafactory train config.yaml [key=value ...]
    torchrun --nproc_per_node 2 -m moemix.integrations.llamafactory train config.yaml

``config.yaml`` is a LLaMA-Factory training config (``stage: sft``, two or more names in ``dataset:``) with one
more section, ``moemix:``, whose keys are those of moemix's ``mixing:`` section (policy, eta, c, interval, layers,
weights, floor, ...). The run is LLaMA-Factory's own ``run_exp``, with four things installed for its duration:

1. every aligned example is tagged with its dataset, and each dataset is tokenised (and packed) apart, so that
   every training row carries a ``moemix_dataset`` column (:mod:`moemix.integrations.llamafactory_data`);
2. the SFT trainer is a subclass of LLaMA-Factory's ``CustomSeq2SeqTrainer`` whose optimizer steps are drawn by a
   :class:`~moemix.data.feed.MixtureFeed` when each step starts (weights of that very step, exact under any
   number of loader workers and ranks);
3. the routing of the training forwards is counted per dataset (``source: online``: no extra forward pass) and
   every ``interval`` optimizer steps the policy updates the weights (:class:`~moemix.train.callback.MixingCallback`);
4. the mixture state is written beside every checkpoint (``moemix_state.json``) and restored on resume.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from moemix.config import MixingConfig
from moemix.data.feed import MixtureFeed, TicketDataset, collate_tickets
from moemix.data.sampler import MixtureSampler
from moemix.errors import ConfigError, MoemixError
from moemix.files import write_json_atomic
from moemix.integrations.llamafactory_data import (
    RowsByDataset,
    WithDatasetIds,
    WithoutDatasetIds,
    preprocess_by_dataset,
    rows_by_dataset,
    tag_datasets,
)
from moemix.mixing import MixingPolicy, from_state
from moemix.train.callback import MixingCallback
from moemix.train.checkpoint import STATE_FILE, CheckpointCallback, load_state, truncate_log
from moemix.train.freeze import freeze_routers
from moemix.train.online import OnlineExpertCounts, check_routing

logger = logging.getLogger(__name__)

SECTION = "moemix"
"""The key of the moemix section in a LLaMA-Factory config."""
POLICIES = ("dynamic", "uniform", "static", "datasize")
"""Policies a LLaMA-Factory run can use: those that need only the training routing (or nothing)."""
LOG_FILE = "mixture.jsonl"
FINAL_STATE = "mixture_state.json"


def split_config(args: dict[str, Any]) -> tuple[dict[str, Any], MixingConfig, list[str]]:
    """Split a LLaMA-Factory config into its own arguments, moemix's mixing settings and the dataset names.

    Args:
        args: The config as a dict (a YAML file read, overrides applied).

    Returns:
        ``(llamafactory_args, mixing, names)``: the config without the ``moemix`` section, the validated settings
        (``source`` defaults to ``online``) and the training dataset names in order.

    Raises:
        ConfigError: For an unknown moemix key, a value out of range, or LLaMA-Factory settings that mixing
            cannot work with (not SFT, fewer than two datasets, interleaved mixing, streaming, neat packing).
    """
    args = dict(args)
    section = args.pop(SECTION, None) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{SECTION}: must be a mapping of mixing settings, got {type(section).__name__}")
    known = {f.name for f in fields(MixingConfig)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"{SECTION}.{unknown[0]}: unknown key; known keys: {', '.join(sorted(known))}")
    mixing = MixingConfig(**({"source": "online"} | section))
    names = _dataset_names(args.get("dataset"))
    _check_llamafactory_args(args, names)
    _check_mixing(mixing, names)
    return args, mixing, names


def _dataset_names(value: Any) -> list[str]:
    if isinstance(value, str):  # LLaMA-Factory's own reading of "a,b,c"
        return [name.strip() for name in value.split(",") if name.strip()]
    if isinstance(value, (list, tuple)):
        return [str(name).strip() for name in value]
    return []


def _check_llamafactory_args(args: dict[str, Any], names: list[str]) -> None:
    if args.get("stage", "sft") != "sft":
        raise ConfigError(f"stage: moemix mixes the datasets of an sft run, got {args.get('stage')!r}")
    if len(names) < 2:
        raise ConfigError(f"dataset: moemix mixes two or more datasets, got {names}")
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset: a dataset is named twice in {names}")
    if args.get("mix_strategy", "concat") != "concat":
        raise ConfigError(
            f"mix_strategy: {args['mix_strategy']!r} pre-mixes the datasets; moemix draws from each dataset "
            "itself, use concat (the default)"
        )
    if args.get("interleave_probs") is not None:
        raise ConfigError("interleave_probs: moemix sets the weights; give starting weights as moemix.weights")
    if args.get("streaming"):
        raise ConfigError("streaming: moemix draws rows by index; turn streaming off")
    if args.get("neat_packing"):
        raise ConfigError("neat_packing: not supported yet (its 4D attention mask hides padding); use packing")


def _check_mixing(m: MixingConfig, names: list[str]) -> None:
    where = SECTION
    if m.policy not in POLICIES:
        raise ConfigError(
            f"{where}.policy: {m.policy!r} is not available in a LLaMA-Factory run; choose one of {', '.join(POLICIES)}"
        )
    if m.source != "online":
        raise ConfigError(
            f"{where}.source: only online (the routing of the training forwards) in a LLaMA-Factory run, got {m.source!r}"
        )
    if m.interval < 1:
        raise ConfigError(f"{where}.interval: must be >= 1, got {m.interval}")
    if m.eta < 0 or not 0.0 <= m.c <= 1.0:
        raise ConfigError(f"{where}.eta / {where}.c: need eta >= 0 and 0 <= c <= 1, got {m.eta}, {m.c}")
    if m.weights is not None:
        if set(m.weights) != set(names):
            raise ConfigError(f"{where}.weights: must name exactly the datasets {names}, got {sorted(m.weights)}")
        if any(w < 0 for w in m.weights.values()) or abs(sum(m.weights.values()) - 1.0) > 1e-6:
            raise ConfigError(f"{where}.weights: must be non-negative and sum to 1")
    elif m.policy == "static":
        raise ConfigError(f"{where}.policy: static needs {where}.weights")
    n = len(names)
    if not (0.0 <= m.floor <= m.ceiling <= 1.0) or n * m.floor > 1.0 or n * m.ceiling < 1.0:
        raise ConfigError(f"{where}.floor / {where}.ceiling: admit no weights of {n} datasets")
    if m.load_ema is not None and not 0.0 <= m.load_ema < 1.0:
        raise ConfigError(f"{where}.load_ema: must be in [0, 1), got {m.load_ema}")


def build_policy(m: MixingConfig, names: Sequence[str], sizes: Sequence[int]) -> MixingPolicy:
    """The policy of the settings; ``sizes`` are the training rows of each dataset (for ``datasize``)."""
    weights = None if m.weights is None else [float(m.weights[name]) for name in names]
    if m.policy == "dynamic":
        state = {"eta": m.eta, "c": m.c, "weights": weights, "distance": m.distance, "criterion": m.criterion}
    elif m.policy == "static":
        state = {"weights": weights}
    elif m.policy == "datasize":
        state = {"sizes": [int(s) for s in sizes], "by": "examples"}
    else:
        state = {}
    return from_state({"name": m.policy} | state)


class _FinalState(TrainerCallback):
    """Writes ``mixture_state.json`` into the output folder when training ends (main process)."""

    def __init__(self, parts: _MixtureParts):
        self.parts = parts

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_json_atomic(Path(args.output_dir) / FINAL_STATE, self.parts.state())
        return control


class _MixtureParts:
    """What one mixing run holds: sampler, feed, policy callback and online counts, built from a trainer."""

    def __init__(self, trainer, names: list[str], mixing: MixingConfig):
        args = trainer.args
        self.names = names
        self.mixing = mixing
        self.output_dir = Path(args.output_dir)
        self.log_path = self.output_dir / LOG_FILE
        self.is_main = args.process_index == 0
        rows = rows_by_dataset(trainer.train_dataset, len(names))
        sizes = [len(r) for r in rows]
        self.policy = build_policy(mixing, names, sizes)
        self.sampler = MixtureSampler(sizes, self.policy.initial_weights(len(names)), seed=args.seed)
        self.feed = MixtureFeed(
            self.sampler,
            RowsByDataset(trainer.train_dataset, rows),
            WithDatasetIds(trainer.data_collator),
            batch_size=args.per_device_train_batch_size,
            world_size=args.world_size,
            rank=args.process_index,
        )
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        self.tickets = args.max_steps * per_step if args.max_steps > 0 else sum(sizes)
        model = trainer.model
        check_routing(model, mixing.layers, mixing.router_module)
        if mixing.freeze_router:
            freeze_routers(model, mixing.router_module)
        self.online = OnlineExpertCounts(model, len(names), mixing.layers, mixing.router_module, mixing.count_prompt_tokens)
        self.scalars: dict[str, float] = {}
        self.callback = MixingCallback(
            names,
            self.policy,
            self.sampler,
            [[] for _ in names],  # nothing to probe: the training forwards are the signal
            mixing.interval,
            self.log_path,
            mixing.layers,
            source=self.online,
            load_ema=mixing.load_ema,
            router_module=mixing.router_module,
            count_prompt_tokens=mixing.count_prompt_tokens,
            bounds=(mixing.floor, mixing.ceiling),
            collapse_warning=mixing.collapse_warning,
            scalars=self.scalars,
        )

    def state(self) -> dict[str, Any]:
        """The mixture state a checkpoint needs to continue exactly."""
        return {
            "names": self.names,
            "mixing": asdict(self.mixing),
            "policy": self.callback.policy.state_dict(),
            "sampler": self.sampler.state_dict(),
            "history": self.callback.history,
            "window_loads": self.callback.window.state_dict(),
            "online_counts": self.online.state_dict(),
            "draws": {name: int(c) for name, c in zip(self.names, self.sampler.counts)},
            "weights": {name: float(w) for name, w in zip(self.names, self.sampler.weights)},
        }

    def begin(self, checkpoint: str | None) -> None:
        """Before training: start fresh logs, or restore the mixture of ``checkpoint``.

        Raises:
            MoemixError: If the checkpoint has no moemix state or was made with other datasets or settings.
        """
        if not checkpoint:
            if self.is_main:
                self.log_path.unlink(missing_ok=True)
            return
        folder = Path(checkpoint)
        if not (folder / STATE_FILE).is_file():
            raise MoemixError(f"{folder}: no {STATE_FILE}; it was not written by a moemix run")
        state = load_state(folder)
        if state["names"] != self.names or state["sampler"]["sizes"] != self.sampler.sizes:
            raise MoemixError(
                f"{folder}: made with datasets {state['names']} of sizes {state['sampler']['sizes']}, this run has "
                f"{self.names} of sizes {self.sampler.sizes}"
            )
        if state["mixing"] != asdict(self.mixing):
            raise MoemixError(f"{folder}: made with other moemix settings than this run's")
        self.sampler.load_state_dict(state["sampler"])
        self.callback.policy = from_state(state["policy"])
        self.callback.history = list(state["history"])
        self.callback.window.load_state_dict(state["window_loads"])
        self.online.load_state_dict(state["online_counts"])
        if self.is_main:
            truncate_log(self.log_path, int(state["step"]))


def _load_fused_experts(trainer, checkpoint: str, model=None) -> bool:
    """Load a checkpoint's weights through ``from_pretrained``; False where the Trainer's own loading must do.

    transformers 5 saves MoE experts in their original per-expert layout, and ``Trainer._load_from_checkpoint``
    loads that file into the model's fused layout as is: the experts silently keep their initial values (seen
    with transformers 5.6 and 5.24). ``from_pretrained`` converts the layout. (The same fix as
    :class:`moemix.train.trainer.MixtureTrainer`'s; the general integration layer should own one copy.)
    """
    from transformers import PreTrainedModel
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

    target = trainer.accelerator.unwrap_model(model if model is not None else trainer.model)
    folder = Path(checkpoint)
    plain = isinstance(target, PreTrainedModel) and not (trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled)
    if not (plain and ((folder / SAFE_WEIGHTS_NAME).is_file() or (folder / SAFE_WEIGHTS_INDEX_NAME).is_file())):
        return False
    dtype = next(target.parameters()).dtype
    loaded = type(target).from_pretrained(folder, config=target.config, dtype=dtype, device_map="cpu")
    target.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    return True


def mixing_trainer_class(base: type, names: Sequence[str], mixing: MixingConfig) -> type:
    """A subclass of LLaMA-Factory's SFT trainer ``base`` that trains on the moemix mixture of ``names``.

    The training DataLoader hands out tickets only; each optimizer step's micro-batches are drawn when the step
    starts (``get_batch_samples``), with the weights in effect for that step. Evaluation and prediction use
    LLaMA-Factory's collator and datasets as they are.
    """
    names = list(names)

    class MoemixSeq2SeqTrainer(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.moemix = _MixtureParts(self, names, mixing)
            self.data_collator = WithoutDatasetIds(self.data_collator)
            self.add_callback(self.moemix.callback)
            self.add_callback(CheckpointCallback(self.moemix.state, self.moemix.feed))
            self.add_callback(_FinalState(self.moemix))

        def train(self, resume_from_checkpoint=None, *args, **kwargs):
            checkpoint = resume_from_checkpoint
            if checkpoint is True:
                from transformers.trainer_utils import get_last_checkpoint

                checkpoint = get_last_checkpoint(self.args.output_dir)
            self.moemix.begin(checkpoint)
            return super().train(resume_from_checkpoint, *args, **kwargs)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            if not _load_fused_experts(self, resume_from_checkpoint, model):
                super()._load_from_checkpoint(resume_from_checkpoint, model)

        def get_train_dataloader(self):
            tickets = TicketDataset(self.moemix.tickets)
            loader = torch.utils.data.DataLoader(
                tickets,
                batch_size=self._train_batch_size,
                sampler=torch.utils.data.SequentialSampler(tickets),
                collate_fn=collate_tickets,
                drop_last=self.args.dataloader_drop_last,
            )
            return self.accelerator.prepare(loader)

        def get_batch_samples(self, epoch_iterator, num_batches, device):
            tickets = []
            for _ in range(num_batches):
                try:
                    tickets.append(next(epoch_iterator))
                except StopIteration:
                    break
            if not tickets:
                return [], None
            batches = self.moemix.feed.next_step(len(tickets))
            return batches, self._get_num_items_in_batch(batches, device)

        def compute_loss(self, model, inputs, *args, **kwargs):
            dataset_ids = inputs.pop("dataset_ids", None)
            if dataset_ids is None or not model.training:
                return super().compute_loss(model, inputs, *args, **kwargs)
            with self.moemix.online.counting(inputs, dataset_ids):
                return super().compute_loss(model, inputs, *args, **kwargs)

        def log(self, logs, *args, **kwargs):
            if self.moemix.scalars:  # the last update's weights and distances ride along (TensorBoard, W&B, ...)
                logs = {**logs, **self.moemix.scalars}
                self.moemix.scalars.clear()
            return super().log(logs, *args, **kwargs)

    MoemixSeq2SeqTrainer.__qualname__ = MoemixSeq2SeqTrainer.__name__ = f"Moemix{base.__name__}"
    return MoemixSeq2SeqTrainer


@contextlib.contextmanager
def mixing_installed(names: Sequence[str], mixing: MixingConfig) -> Iterator[None]:
    """Install the dataset tags, the per-dataset preprocessing and the mixing trainer into LLaMA-Factory.

    Everything is put back on exit. The functions replaced are module attributes that LLaMA-Factory 0.9.5 looks
    up at call time: ``llamafactory.data.loader._get_merged_dataset`` and ``._get_dataset_processor``, and
    ``llamafactory.train.sft.workflow.CustomSeq2SeqTrainer``.
    """
    from llamafactory.data import loader
    from llamafactory.train.sft import workflow

    names = list(names)
    merged, processor, trainer = loader._get_merged_dataset, loader._get_dataset_processor, workflow.CustomSeq2SeqTrainer

    def tagged_merged(dataset_names, model_args, data_args, training_args, stage, return_dict=False):
        datasets = merged(dataset_names, model_args, data_args, training_args, stage, return_dict=True)
        if datasets is None:
            return None
        if list(data_args.dataset) != names:
            raise ConfigError(f"dataset: LLaMA-Factory read {data_args.dataset}, moemix read {names}")
        datasets = tag_datasets(datasets, names)
        if return_dict:
            return datasets
        return loader.merge_dataset(list(datasets.values()), data_args, seed=training_args.seed)

    def processor_by_dataset(*args, **kwargs):
        built = processor(*args, **kwargs)
        built.preprocess_dataset = preprocess_by_dataset(built.preprocess_dataset)
        return built

    loader._get_merged_dataset = tagged_merged
    loader._get_dataset_processor = processor_by_dataset
    workflow.CustomSeq2SeqTrainer = mixing_trainer_class(trainer, names, mixing)
    try:
        yield
    finally:
        loader._get_merged_dataset, loader._get_dataset_processor = merged, processor
        workflow.CustomSeq2SeqTrainer = trainer


def run_exp(args: dict[str, Any], callbacks: list | None = None) -> None:
    """Run LLaMA-Factory's ``run_exp`` on ``args`` (a config dict with a ``moemix`` section), mixing the datasets.

    Raises:
        ConfigError: See :func:`split_config`.
    """
    from llamafactory.train.tuner import run_exp as llamafactory_run_exp

    llamafactory_args, mixing, names = split_config(args)
    with mixing_installed(names, mixing):
        llamafactory_run_exp(llamafactory_args, callbacks=callbacks)


def read_config(path: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A YAML config with ``key=value`` overrides on top, read as LLaMA-Factory's own CLI reads them."""
    from omegaconf import OmegaConf

    if not Path(path).is_file():
        raise ConfigError(f"{path}: config file not found")
    merged = OmegaConf.merge(OmegaConf.load(Path(path).absolute()), OmegaConf.from_dotlist(list(overrides)))
    return OmegaConf.to_container(merged)


USAGE = "usage: python -m moemix.integrations.llamafactory train CONFIG.yaml [key=value ...]"


def main(argv: Sequence[str] | None = None) -> int:
    """The launcher: ``train CONFIG.yaml [key=value ...]``. Errors of the user's making print one line, exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "train":
        print(USAGE, file=sys.stderr)
        return 2
    try:
        run_exp(read_config(argv[1], argv[2:]))
    except MoemixError as err:
        print(f"moemix: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
