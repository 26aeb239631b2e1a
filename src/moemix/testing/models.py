"""Tiny random-init Hugging Face MoE causal LMs, built in-process from configs (no download).

They run the real transformers modeling code, so routing, padding and gradient checkpointing behave as in the
full-size models, at a size that runs a forward in milliseconds on a CPU.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

# Shared by every architecture: 2 layers, hidden 32, 4 heads of 8 over 2 KV heads, ids 0-2 special.
_COMMON: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}

# Per architecture: what it names the expert count, top-k and expert width, plus what it needs to be small
# (head_dim defaults to 128 in Qwen3 and 64 in GPT-OSS). PhiMoE's jitter is off, but in train mode it still
# samples its top-2 (sparsemixer), so its train-mode routing depends on the torch RNG.
_ARCH: dict[str, dict[str, Any]] = {
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2, "router_jitter_noise": 0.0},
    "qwen2_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 64,
        # Every layer sparse: the defaults would already do it, but the tests count on it.
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    },
    "qwen3_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "head_dim": 8,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
    },
    "olmoe": {"num_experts": 4, "num_experts_per_tok": 2, "intermediate_size": 32},
    "deepseek_v3": {
        # Layer 0 dense, layer 1 MoE with group-limited routing (2 groups of 4, 1 group kept) and a shared expert.
        "n_routed_experts": 8,
        "num_experts_per_tok": 2,
        "n_group": 2,
        "topk_group": 1,
        "first_k_dense_replace": 1,
        "n_shared_experts": 1,
        "moe_intermediate_size": 32,
        "num_key_value_heads": 4,
        "q_lora_rank": 16,
        "kv_lora_rank": 16,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 8,
        "v_head_dim": 8,
        "head_dim": 8,
    },
    "phimoe": {
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "router_jitter_noise": 0.0,
        "input_jitter_noise": 0.0,
    },
    "granitemoe": {"num_local_experts": 4, "num_experts_per_tok": 2, "intermediate_size": 32},
    "gpt_oss": {
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "intermediate_size": 32,
        "head_dim": 8,
        "sliding_window": 16,
        # YaRN as in the released model, with the original context scaled down so that factor 32 fits 512.
        "rope_parameters": {
            "rope_type": "yarn",
            "factor": 32.0,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "truncate": False,
            "original_max_position_embeddings": 16,
            "rope_theta": 150000.0,
        },
    },
}

TINY_ARCHS: tuple[str, ...] = tuple(_ARCH)
"""Architectures (transformers ``model_type``) that :func:`tiny_moe` builds."""


def tiny_moe(arch: str, vocab_size: int = 256, seed: int = 0, **config_overrides: Any) -> PreTrainedModel:
    """Build a tiny random-init MoE causal LM of a real transformers architecture.

    Hidden size 32, 2 decoder layers, 4 experts (8 for deepseek_v3, whose first layer is dense), top-2, fp32,
    ``pad_token_id=0``, ``bos_token_id=1``, ``eos_token_id=2``. The caller's global RNG state is left untouched.

    Args:
        arch: One of :data:`TINY_ARCHS`.
        vocab_size: Vocabulary size; at least 3 so that the special ids fit.
        seed: Seed of the weights: the same ``(arch, seed, overrides)`` gives identical weights.
        **config_overrides: Config fields to set on top, e.g. ``num_hidden_layers=4, hidden_size=128``.

    Returns:
        The model, in train mode as ``from_config`` leaves it.

    Raises:
        ValueError: If ``arch`` is not in :data:`TINY_ARCHS` or ``vocab_size`` is below 3.
    """
    if arch not in _ARCH:
        raise ValueError(f"tiny_moe has no architecture {arch!r}; choose one of {', '.join(TINY_ARCHS)}")
    if vocab_size < 3:
        raise ValueError(f"tiny_moe vocab_size must be at least 3 (ids 0-2 are pad, bos, eos), got {vocab_size}")
    fields = {**_COMMON, **_ARCH[arch], "vocab_size": vocab_size, **config_overrides}
    config = AutoConfig.for_model(arch, **fields)
    # Fork so that building a test model does not shift the random stream of the code under test.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model
