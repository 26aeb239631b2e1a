"""Load the configured model and tokenizer (a local Hugging Face folder, or a tiny random-init MoE)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

from moemix.config import ModelConfig
from moemix.errors import ConfigError
from moemix.hub import check_local_or_hub, offline_unless_reachable
from moemix.models.gguf import gguf_kwargs


def check_model_source(config: ModelConfig, where: Callable[[str], str] = str) -> None:
    """Check that the model and tokenizer a config names exist, before anything loads.

    A missing local folder otherwise surfaces after the data is tokenised, as a malformed Hub id.

    Args:
        config: The model section.
        where: Formats a field's place (``run.yaml:7: model.name_or_path``), e.g. ``moemix.config.where_set``.

    Raises:
        ConfigError: For a model or tokenizer that is neither an existing path nor a Hub id, or an unknown
            built-in model.
    """
    if config.name_or_path is not None:
        from moemix.models.default import resolve_source

        resolve_source(config.name_or_path, None, where("model.name_or_path"))
    if config.tokenizer not in (None, "builtin"):
        check_local_or_hub(config.tokenizer, "tokenizer folder", where("model.tokenizer"))


def _unreachable_error(place: str, name: str, what: str, reason: str) -> ConfigError:
    return ConfigError(
        f"{place}: {name!r} is no local folder, not in the local Hugging Face cache, and {reason}; download the "
        f"{what} where the Hub can be reached, or give its folder"
    )


def build_tokenizer(config: ModelConfig, texts: Callable[[], Iterable[str]]):
    """The tokenizer: ``builtin`` trains (or loads from cache) a byte-level BPE on ``texts()``.

    A tokenizer without a pad token gets its eos token as pad (padding is masked everywhere).
    """
    if config.tokenizer == "builtin":
        from moemix.data.tokenizer import train_bpe_tokenizer

        tokenizer = train_bpe_tokenizer(texts(), vocab_size=config.vocab_size)
    else:
        from transformers import AutoTokenizer

        kwargs = {}
        if config.tokenizer:
            source = config.tokenizer
        else:  # the model's own (builtin:smollm2, a GGUF file, an upcycled model's cache folder)
            from moemix.models.default import model_source

            source, gguf_file = model_source(config)
            kwargs = gguf_kwargs(gguf_file)
        with offline_unless_reachable() as unreachable:
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            except (OSError, ValueError) as err:
                if unreachable:
                    raise _unreachable_error("model.tokenizer", source, "tokenizer", unreachable) from None
                raise ConfigError(
                    f"model.tokenizer: cannot load a tokenizer from {source!r} ({str(err).splitlines()[0]})"
                ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(config: ModelConfig, tokenizer):
    """The model: ``tiny`` builds a random-init MoE of that architecture sized to the tokenizer.

    Then what trains is set: the last ``trainable_layers``, frozen routers, or LoRA adapters.
    """
    from moemix.models.lora import prepare_trainable

    return prepare_trainable(_load_weights(config, tokenizer), config)


def _load_weights(config: ModelConfig, tokenizer):
    if config.tiny is not None:
        from moemix.models.tiny import TINY_ARCHS, tiny_moe

        if config.tiny not in TINY_ARCHS:
            raise ConfigError(
                f"model.tiny: unknown architecture {config.tiny!r}; choose one of {', '.join(TINY_ARCHS)}"
            )
        overrides = dict(config.tiny_config)
        overrides.setdefault("pad_token_id", tokenizer.pad_token_id)
        return tiny_moe(config.tiny, vocab_size=len(tokenizer), seed=config.seed, **overrides)
    from transformers import AutoModelForCausalLM

    from moemix.models.default import model_source

    source, gguf_file = model_source(config)
    kwargs = gguf_kwargs(gguf_file)
    with offline_unless_reachable() as unreachable:
        try:
            with warnings.catch_warnings():
                # An upcycled Qwen2-MoE has a width-0 shared expert; torch warns that initialising it does nothing.
                warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
                return AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            if unreachable:
                raise _unreachable_error("model.name_or_path", config.name_or_path, "model", unreachable) from None
            raise ConfigError(
                f"model.name_or_path: cannot load a model from {config.name_or_path!r} ({str(err).splitlines()[0]})"
            ) from None
