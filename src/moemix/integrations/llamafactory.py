"""moemix's dynamic data mixing inside a LLaMA-Factory SFT run.

Usage (in an environment with LLaMA-Factory installed; see docs/LLAMAFACTORY.md)::

    python -m moemix.integrations.llamafactory train config.yaml [key=value ...]
    torchrun --nproc_per_node 2 -m moemix.integrations.llamafactory train config.yaml

``config.yaml`` is a LLaMA-Factory training config (``stage: sft``, two or more names in ``dataset:``) with one
more section, ``moemix:``, whose keys are those of moemix's ``mixing:`` section (policy, eta, c, interval, layers,
weights, floor, ...). The run is LLaMA-Factory's own ``run_exp``, with four things installed for its duration:

1. every aligned example is tagged with its dataset, and each dataset is tokenised (and packed) apart, so that
   every training row carries a ``moemix_dataset`` column (:mod:`moemix.integrations.llamafactory_data`);
2. the SFT trainer is :func:`moemix.integrations.mixing_trainer_class` over LLaMA-Factory's
   ``CustomSeq2SeqTrainer``: its optimizer steps are drawn by a :class:`~moemix.data.feed.MixtureFeed` when each
   step starts (weights of that very step, exact under any number of loader workers and ranks);
3. the routing of the training forwards is counted per dataset (``source: online``: no extra forward pass) and
   every ``interval`` optimizer steps the policy updates the weights (:class:`~moemix.train.callback.MixingCallback`);
4. the mixture state is written beside every checkpoint (``moemix_state.json``) and restored on resume.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from moemix.config import MixingConfig
from moemix.errors import ConfigError, MoemixError
from moemix.integrations.llamafactory_data import preprocess_by_dataset, tag_datasets
from moemix.integrations.settings import mixing_settings
from moemix.integrations.trainer import mixing_trainer_class

SECTION = "moemix"
"""The key of the moemix section in a LLaMA-Factory config."""
POLICIES = ("dynamic", "uniform", "static", "datasize")
"""Policies a LLaMA-Factory run can use: those that need only the training routing (or nothing)."""


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
    names = _dataset_names(args.get("dataset"))
    _check_llamafactory_args(args, names)
    mixing = mixing_settings(section, names, SECTION, policies=POLICIES, sources=("online",))
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
    merged, processor, trainer = (
        loader._get_merged_dataset,
        loader._get_dataset_processor,
        workflow.CustomSeq2SeqTrainer,
    )

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
