"""Models and tokenizers: load a user's MoE, or build the small random-init default."""

from moemix.models.build import build_tokenizer, check_model_source, load_model

__all__ = ["build_tokenizer", "check_model_source", "load_model"]
