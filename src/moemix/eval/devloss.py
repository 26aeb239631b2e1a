"""Per-dataset dev loss of a model on a config's datasets: the same splits and loss as training reports."""

from __future__ import annotations

from pathlib import Path

from moemix.errors import ConfigError

RUN_CONFIG_NAMES = ("run_config.yaml", "config.yaml", "moemix.yaml")
"""Config files looked for in a run folder when ``--config`` is not given."""


def find_config(config: str | None, run_dir: Path | None) -> Path:
    """The config whose datasets the dev loss is measured on: ``config``, else one saved in the run folder.

    Raises:
        ConfigError: If there is none.
    """
    if config is not None:
        return Path(config)
    for name in RUN_CONFIG_NAMES if run_dir is not None else ():
        if (run_dir / name).is_file():
            return run_dir / name
    raise ConfigError("eval devloss: give --config CONFIG.yaml (the datasets whose dev splits are measured)")


def dev_loss_by_dataset(model, tokenizer, config_path: str | Path, overrides: list[str] | None = None) -> dict:
    """Token-weighted mean loss on assistant tokens over each dataset's dev split (``eval_batches`` of them).

    Args:
        model: The model.
        tokenizer: The model's tokenizer (examples are rendered with its chat template).
        config_path: The YAML config naming the datasets (``max_length``, ``seed``, ``eval_batches`` apply).
        overrides: Config overrides, as on the command line.

    Returns:
        ``{"loss": {name: loss}, "mean": mean loss, "examples": {name: dev examples}}``.
    """
    from moemix.config import load_config
    from moemix.data.load import load_data
    from moemix.data.mixture import MixtureCollator, fixed_batches
    from moemix.train.evaluate import dev_losses

    config = load_config(config_path, overrides)
    collator = MixtureCollator(pad_token_id=tokenizer.pad_token_id)
    batch_size = int(config.training.get("per_device_eval_batch_size", 8))
    batches = {}
    examples = {}
    for ds, item in zip(config.datasets, load_data(config, tokenizer), strict=True):
        name = ds.name
        batches[name] = list(fixed_batches(item.dev, batch_size, config.eval_batches, collator))
        examples[name] = sum(len(b["input_ids"]) for b in batches[name])
    losses = dev_losses(model, batches)
    return {"loss": losses, "mean": sum(losses.values()) / len(losses), "examples": examples}
