"""tiny_moe builds small, seeded, working MoE causal LMs of real transformers architectures."""

from __future__ import annotations

import pytest
import torch

from moemix.routing import find_moe_layers
from moemix.testing import TINY_ARCHS, tiny_moe


def test_the_required_architectures_are_there():
    assert {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"} <= set(TINY_ARCHS)


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_same_seed_same_weights_other_seed_other_weights(arch):
    first, again, other = tiny_moe(arch, seed=5), tiny_moe(arch, seed=5), tiny_moe(arch, seed=6)

    weights, weights_again, weights_other = first.state_dict(), again.state_dict(), other.state_dict()
    assert weights.keys() == weights_again.keys() == weights_other.keys()
    assert all(torch.equal(weights[key], weights_again[key]) for key in weights)
    assert not torch.equal(first.lm_head.weight, other.lm_head.weight)
    # Some routers keep their weight in a child (DBRX's layer, HunYuan's wg) beside constant-init scales.
    routers = [find_moe_layers(model)[-1].router.parameters() for model in (first, other)]
    assert any(not torch.equal(a, b) for a, b in zip(*routers))


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_is_tiny_and_fit_for_padded_batches(arch):
    model = tiny_moe(arch, vocab_size=100)
    config = model.config

    assert config.model_type == arch
    assert config.num_hidden_layers == 2
    assert 32 <= config.hidden_size <= 64
    assert config.max_position_embeddings >= 512
    assert 0 <= config.pad_token_id < config.vocab_size == 100
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) < 200_000
    layers = find_moe_layers(model)
    top_k = 1 if arch == "zaya" else 2  # ZAYA routes top-1 only
    assert all(4 <= layer.num_experts <= 8 and layer.top_k == top_k for layer in layers)
    if arch in ("qwen2_moe", "qwen3_moe"):
        assert config.decoder_sparse_step == 1 and config.mlp_only_layers == []
        assert len(layers) == 2

    input_ids = torch.tensor([[5, 6, 7, 8, 0, 0], [0, 0, 9, 10, 11, 12]])
    attention_mask = (input_ids != 0).long()
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    assert out.logits.shape == (2, 6, 100)
    assert torch.isfinite(out.logits[attention_mask == 1]).all()
    assert torch.isfinite(out.loss)


def test_config_overrides_pass_through():
    model = tiny_moe("qwen3_moe", num_hidden_layers=4, hidden_size=128, num_experts=8)

    assert (model.config.num_hidden_layers, model.config.hidden_size) == (4, 128)
    assert model.model.embed_tokens.weight.shape == (256, 128)
    assert [(layer.layer_index, layer.num_experts) for layer in find_moe_layers(model)] == [(i, 8) for i in range(4)]
    assert torch.isfinite(model(input_ids=torch.tensor([[3, 4, 5]])).logits).all()


def test_leaves_the_global_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)

    torch.manual_seed(123)
    tiny_moe("olmoe", seed=9)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("arch", "vocab_size"), [("llama", 256), ("mixtral", 2)])
def test_rejects_unknown_arch_and_too_small_vocab(arch, vocab_size):
    with pytest.raises(ValueError, match="tiny_moe"):
        tiny_moe(arch, vocab_size=vocab_size)
