"""What trains: the last N decoder layers only (``model.trainable_layers``), or LoRA adapters through peft.

With ``model.lora`` the model is wrapped in a peft ``PeftModel``: adapters on ``target_modules`` train, the base
weights are frozen, and each MoE router trains in full beside them (peft ``modules_to_save``), so that the
routing the mixture is learnt from can still move; ``mixing.freeze_router`` (applied after this, see
:mod:`moemix.train.freeze`) freezes the routers in both cases. ``Trainer.save_model`` then
writes the adapter alone (``adapter_config.json`` + ``adapter_model.safetensors``, routers included), which
:func:`load_adapter` (or peft's ``AutoPeftModelForCausalLM``) loads on top of the base model it names.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn

from moemix.config import ModelConfig
from moemix.errors import ConfigError

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder layers: the ModuleList as long as ``config.num_hidden_layers``.

    Raises:
        ConfigError: If the model has no such list.
    """
    count = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ConfigError(f"model.trainable_layers: cannot find the decoder layers of {type(model).__name__}")


def router_names(model: nn.Module) -> list[str]:
    """Module paths of the model's MoE routers (empty for a dense model)."""
    from moemix.errors import RoutingError
    from moemix.routing import find_moe_layers

    try:
        layers = find_moe_layers(model)
    except RoutingError:
        return []
    names = {id(module): name for name, module in model.named_modules()}
    return [names[id(layer.router)] for layer in layers]


def freeze_layers(model: nn.Module, trainable_layers: int | None) -> nn.Module:
    """Freeze all but the last ``trainable_layers`` decoder layers (the embeddings and the head too).

    Args:
        model: A Hugging Face causal LM.
        trainable_layers: How many of the last decoder layers train; None trains every parameter.

    Returns:
        The same model, its parameters' ``requires_grad`` set.

    Raises:
        ConfigError: If ``trainable_layers`` exceeds the model's layer count.
    """
    if trainable_layers is not None:
        layers = decoder_layers(model)
        if trainable_layers > len(layers):
            raise ConfigError(f"model.trainable_layers: {trainable_layers} but the model has {len(layers)} layers")
        for param in model.parameters():
            param.requires_grad_(False)
        for layer in list(layers)[len(layers) - trainable_layers :]:
            for param in layer.parameters():
                param.requires_grad_(True)
    return model


def apply_lora(model: nn.Module, config: ModelConfig):
    """Wrap the model in peft LoRA adapters as ``config.lora`` says.

    Returns:
        A ``peft.PeftModel``.

    Raises:
        ConfigError: If peft is missing or no module matches ``target_modules``.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError(
            "model.lora: needs the peft package (pip install 'moemix[lora]' or pip install peft)"
        ) from None
    lora = config.lora
    routers = router_names(model)
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        modules_to_save=routers or None,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, peft_config)
    except ValueError as err:
        raise ConfigError(f"model.lora.target_modules: {str(err).splitlines()[0]}") from None


def prepare_trainable(model: nn.Module, config: ModelConfig):
    """Apply the model config's choice of what trains: the last layers only, or LoRA adapters.

    Returns:
        The model to train (a ``PeftModel`` with ``config.lora``), with a log line of the trainable count.
    """
    if config.lora is not None:
        model = apply_lora(model, config)
    else:
        model = freeze_layers(model, config.trainable_layers)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("trainable parameters: %d of %d (%.1f%%)", trainable, total, 100.0 * trainable / max(total, 1))
    return model


def is_adapter(path: str | os.PathLike[str]) -> bool:
    """Whether a folder holds a peft adapter (rather than a full model)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def load_adapter(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None, merge: bool = False):
    """Load a saved LoRA adapter on top of its base model.

    Args:
        path: The adapter folder (``RUN/model`` of a LoRA run).
        base: The base model folder; default the ``base_model_name_or_path`` the adapter records.
        merge: Merge the adapters into the weights and return a plain transformers model.

    Returns:
        The ``PeftModel`` (or the merged model), in eval mode.

    Raises:
        ConfigError: If the folder holds no adapter or the base cannot be found.
    """
    import json

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = Path(path)
    if not is_adapter(folder):
        raise ConfigError(f"{folder}: no {ADAPTER_CONFIG}; not a LoRA adapter folder")
    recorded = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    source = base or recorded
    if not source or not Path(source).exists():
        raise ConfigError(
            f"{folder / ADAPTER_CONFIG}: base_model_name_or_path {source!r} is not a local folder; give the base"
        )
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(source)), str(folder))
    if merge:
        model = model.merge_and_unload()
    return model.eval()
