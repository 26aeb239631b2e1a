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

# Every other MoE causal LM of transformers 5.24 whose tiny config builds. They take the sizes below where their
# config has the field, plus what each needs: hybrids keep one full-attention layer (a cache of linear-attention
# layers only cannot tell its length), MLA models have as many KV heads as heads, dense-first families have
# layer 0 dense and layer 1 MoE, and indexers, hyper-connections and n-gram tables are shrunk.
_SMALL: dict[str, Any] = {
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "shared_intermediate_size": 32,
    "intermediate_size_mlp": 64,
    "head_dim": 8,
    "num_experts": 4,
    "num_local_experts": 4,
    "n_routed_experts": 4,
    "moe_num_experts": 4,
    "num_experts_per_tok": 2,
    "moe_k": 2,
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "qk_head_dim": 16,
    "n_group": 2,
    "topk_group": 1,
    "n_shared_experts": 1,
    "first_k_dense_replace": 1,
    "mlp_only_layers": [],
    "decoder_sparse_step": 1,
    "router_jitter_noise": 0.0,
    "sliding_window": 16,
    "attention_chunk_size": 16,
    "kv_channels": 8,
    "mamba_n_heads": 4,
    "mamba_d_head": 16,
    "mamba_d_state": 8,
    "mamba_chunk_size": 16,
    "mamba_n_groups": 1,
    "moe_layer_start_index": 0,
    "moe_layer_end_index": 1,
    "moe_layer_interval": 1,
}
_MLA = {"num_key_value_heads": 4}
_LINEAR_ATTENTION = {
    "layer_types": ["linear_attention", "full_attention"],
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
}
_INDEXER = {"index_head_dim": 8, "index_n_heads": 2, "index_topk": 8}
_DENSE_FIRST = {"mlp_layer_types": ["dense", "sparse"]}
_INKLING = {
    "layer_types": ["hybrid_sliding", "hybrid"],
    "d_rel": 4,
    "swa_num_attention_heads": 4,
    "swa_num_key_value_heads": 2,
    "swa_head_dim": 8,
    "sliding_window_size": 16,
    "rel_extent": 16,
}
_OTHER: dict[str, dict[str, Any]] = {
    "afmoe": {},
    "aria_text": {},
    "axk1": _MLA,
    "axk2": {**_MLA, **_DENSE_FIRST, **_INDEXER, "layer_types": ["indexed_attention"] * 2, "gated_norm_rank": 4},
    "bailing_hybrid": {
        **_DENSE_FIRST,
        **_MLA,
        "layer_types": ["linear_attention", "full_attention"],
        "num_expert_group": 2,
        "topk_group": 1,
        "num_experts_per_token": 2,
        "linear_head_dim": 8,
        "linear_num_heads": 4,
        "num_shared_experts": 1,
    },
    "beam": {**_DENSE_FIRST, "layer_types": ["sliding_attention", "full_attention"]},
    "cohere2_moe": {},
    "dbrx": {
        # DBRX names its sizes its own way; from_config needs rope_theta and a clip_qkv (see the notes).
        "d_model": 32,
        "n_heads": 4,
        "n_layers": 2,
        "max_seq_len": 512,
        "attn_config": {"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0},
        "ffn_config": {"ffn_hidden_size": 32, "moe_num_experts": 4, "moe_top_k": 2},
    },
    "deepseek_v2": _MLA,
    "deepseek_v32": {**_MLA, **_DENSE_FIRST, **_INDEXER},
    "deepseek_v4": {
        # Layer 0 routes by a token-id table (hash), layer 1 by its learned router.
        "mlp_layer_types": ["hash_moe", "moe"],
        "layer_types": ["heavily_compressed_attention", "compressed_sparse_attention"],
        "num_key_value_heads": 1,
        "hc_mult": 2,
        "o_groups": 2,
        "o_lora_rank": 8,
        **_INDEXER,
    },
    "dots1": {},
    "dots3_note_text": {
        **_MLA,
        **_DENSE_FIRST,
        **_INDEXER,
        "per_layer_config": {},
        "layer_types": ["sliding_attention", "indexed_attention"],
        "shared_experts_intermediate_size": 32,
        "n_group": 1,
        "head_dim": 16,
    },
    "ernie4_5_moe": {},
    "exaone_moe": {},
    "flex_olmo": {},
    "flint": {"layer_types": ["sliding_attention", "full_attention"]},
    "gemma4_text": {
        # The MoE block sits beside the dense MLP of every decoder layer once enabled.
        "enable_moe_block": True,
        "top_k_experts": 2,
        "layer_types": ["sliding_attention", "full_attention"],
        "hidden_size_per_layer_input": 8,
        "per_layer_config": {},
    },
    "glm4_moe": {},
    "glm4_moe_lite": _MLA,
    "glm_moe_dsa": {**_MLA, **_DENSE_FIRST, **_INDEXER, "indexer_types": ["full", "full"]},
    "granitemoe_swa": {},
    "granitemoehybrid": {"layer_types": ["linear_attention", "full_attention"]},
    "granitemoeshared": {},
    "hunyuan_v1_moe": {"moe_topk": 2},
    "hy_v3": {},
    "hy_v4": {
        **_DENSE_FIRST,
        **_INDEXER,
        "layer_types": ["indexed_attention", "indexed_attention"],
        "hc_mult": 2,
    },
    "inkling_text": {**_INKLING, "mlp_layer_types": ["sparse", "sparse"]},
    "inkling2_text": {**_INKLING, "n_layers_per_attn_res_block": 1},
    "jamba": {
        # Layer 0 attention, layer 1 Mamba with the MoE; the pure-torch Mamba path (no CUDA kernels).
        "attn_layer_period": 2,
        "attn_layer_offset": 0,
        "mamba_dt_rank": 4,
        "use_mamba_kernels": False,
    },
    "jetmoe": {"num_key_value_heads": 4},
    "kimi_linear": {
        **_DENSE_FIRST,
        **_MLA,
        "layer_types": ["linear_attention", "full_attention"],
        "num_expert_group": 1,
        "num_experts_per_token": 2,
        "linear_head_dim": 8,
        "linear_num_heads": 4,
    },
    "kolibri1": {},
    "laguna": {},
    "lara_mini": _LINEAR_ATTENTION,
    "lfm2_moe": {"layer_types": ["conv", "full_attention"], "num_dense_layers": 1},
    "llama4_text": {"interleave_moe_layer_step": 1},
    "longcat_flash": {
        # One decoder layer holds two sublayers (num_hidden_layers = 2 x num_layers) and routes to 4 real and
        # 2 zero experts (identity, not counted).
        "num_layers": 1,
        "zero_expert_num": 2,
        "ffn_hidden_size": 32,
        "expert_ffn_hidden_size": 32,
        "moe_topk": 2,
        **_MLA,
    },
    "mellum": {},
    "mimo_v2_flash": {},
    "minimax": {},
    "minimax_m2": {},
    "minimax_m3_vl_text": {},
    "nemotron_h": {
        "layers_block_type": ["full_attention", "moe"],
        "mamba_num_heads": 4,
        "mamba_head_dim": 8,
        "ssm_state_size": 8,
        "n_groups": 1,
        "chunk_size": 16,
        "moe_shared_expert_intermediate_size": 32,
        "use_mamba_kernels": False,
    },
    "qwen3_5_moe_text": _LINEAR_ATTENTION,
    "qwen3_next": _LINEAR_ATTENTION,
    "qwen4_exp_text": {
        **_LINEAR_ATTENTION,
        "layer_types": ["linear_attention", "indexed_attention"],
        "indexer_n_heads": 2,
        "indexer_kv_heads": 1,
        "indexer_head_dim": 8,
        "indexer_budget": 8,
        "indexer_compress_ratio": 2,
        "hc_lowrank": 8,
        "ple_embed_dim": 8,
        "ngram_vocab_size_base": 64,
        "split_ngram_parts": 2,
        "heads_per_ngram": 2,
        "make_ngram_vocab_size_divisible_by": 8,
    },
    "solar_open": {},
    # ZAYA supports top-1 routing only.
    "zaya": {"num_experts_per_tok": 1, "layer_types": ["hybrid", "hybrid"], "router_hidden_size": 16},
}

TINY_ARCHS: tuple[str, ...] = (*_ARCH, *sorted(_OTHER))
"""Architectures (transformers ``model_type``) that :func:`tiny_moe` builds: every MoE causal LM of the
installed transformers whose tiny config builds (the first eight are the ones the other tests lean on)."""


def tiny_moe(arch: str, vocab_size: int = 256, seed: int = 0, **config_overrides: Any) -> PreTrainedModel:
    """Build a tiny random-init MoE causal LM of a real transformers architecture.

    Hidden size 32, 2 decoder layers, 4 experts (8 for deepseek_v3), top-2 (ZAYA: top-1, all it supports), fp32,
    ``pad_token_id=0``, ``bos_token_id=1``, ``eos_token_id=2``. DeepSeek-style families have layer 0 dense and
    layer 1 MoE; LongCat-Flash has one decoder layer of two sublayers with 2 zero experts beside its 4 experts.
    Routers that an architecture initialises to zero (AFMoE) get seeded random weights, so that routing depends
    on the input. The caller's global RNG state is left untouched.

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
    if arch not in TINY_ARCHS:
        raise ValueError(f"tiny_moe has no architecture {arch!r}; choose one of {', '.join(TINY_ARCHS)}")
    if vocab_size < 3:
        raise ValueError(f"tiny_moe vocab_size must be at least 3 (ids 0-2 are pad, bos, eos), got {vocab_size}")
    if arch in _ARCH:
        fields = {**_COMMON, **_ARCH[arch]}
    else:
        fields = _small_fields(arch, vocab_size)
    fields |= {"vocab_size": vocab_size, **config_overrides}
    config = AutoConfig.for_model(arch, **fields)
    # Fork so that building a test model does not shift the random stream of the code under test.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        _randomise_zero_routers(model)
    return model


def _small_fields(arch: str, vocab_size: int) -> dict[str, Any]:
    """The config fields of an :data:`_OTHER` architecture: the shared sizes it has, then its own."""
    default = AutoConfig.for_model(arch)
    known = default.to_dict()
    fields = {key: value for key, value in {**_COMMON, **_SMALL}.items() if key in known}
    # Per-layer lists follow the default's pattern for the two layers, unless derived (a read-only property).
    settable = not isinstance(getattr(type(default), "layer_types", None), property)
    if isinstance(known.get("layer_types"), list) and settable:
        fields["layer_types"] = known["layer_types"][:2]
    for key in ("vocab_size_per_layer_input", "unpadded_vocab_size"):
        if key in known:
            fields[key] = vocab_size
    return fields | _OTHER[arch]


def _randomise_zero_routers(model: PreTrainedModel) -> None:
    """Give routers that their architecture initialises to zero (AFMoE) seeded random weights.

    A zero router scores every expert alike, so every token would route the same way and no test could tell
    one routing from another.
    """
    from moemix.routing import find_moe_layers

    std = getattr(model.config, "initializer_range", 0.02)
    with torch.no_grad():
        for layer in find_moe_layers(model):
            for weight in layer.router.parameters():
                if weight.dim() >= 2 and not weight.any():
                    weight.normal_(0.0, std)
