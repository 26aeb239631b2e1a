"""Upcycling a dense Llama into an MoE: copy mode computes the dense model's function; split mode works."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from moemix.errors import ConfigError
from moemix.models.upcycle import UpcycleRecipe, moe_layer_indices, split_width, upcycle
from moemix.routing import find_moe_layers

VOCAB = 96


def _dense(seed: int = 0, **overrides) -> torch.nn.Module:
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=72,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    fields.update(overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(LlamaConfig(**fields)).eval()


def _batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (3, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 14:] = 0  # right padding
    mask[2, 5:] = 0
    return ids, mask


@torch.no_grad()
def _max_logit_gap(a, b, ids, mask) -> float:
    la = a(input_ids=ids, attention_mask=mask).logits
    lb = b(input_ids=ids, attention_mask=mask).logits
    keep = mask.bool()
    return float((la[keep] - lb[keep]).abs().max())


@pytest.mark.parametrize(
    ("layers", "experts", "top_k", "tied"),
    [("all", 4, 2, False), ("all", 3, 1, True), ("all", 2, 2, False), ("last:1", 4, 2, True), ("last:2", 3, 1, False)],
)
def test_copy_mode_logits_equal_dense(layers, experts, top_k, tied):
    dense = _dense(tie_word_embeddings=tied)
    moe = upcycle(dense, UpcycleRecipe(experts=experts, top_k=top_k, layers=layers, mode="copy", seed=3))
    ids, mask = _batch()
    assert _max_logit_gap(dense, moe, ids, mask) < 1e-4
    # A random router: tokens really are spread over the experts (the equality is not a single-expert accident).
    found = find_moe_layers(moe)
    assert len(found) == len(moe_layer_indices(layers, 3))
    assert all(layer.num_experts == experts and layer.top_k == top_k for layer in found)


def test_architecture_follows_layers():
    dense = _dense()
    assert upcycle(dense, UpcycleRecipe(experts=2, top_k=1)).config.model_type == "mixtral"
    partial = upcycle(dense, UpcycleRecipe(experts=2, top_k=1, layers="last:1"))
    assert partial.config.model_type == "qwen2_moe"
    assert partial.config.mlp_only_layers == [0, 1]
    assert [layer.layer_index for layer in find_moe_layers(partial)] == [2]


def test_copy_mode_router_receives_spread_tokens():
    dense = _dense()
    moe = upcycle(dense, UpcycleRecipe(experts=4, top_k=1, seed=0))
    seen = []
    hook = find_moe_layers(moe)[-1].router.register_forward_hook(lambda m, a, out: seen.append(out[2]))
    ids, mask = _batch()
    with torch.no_grad():
        moe(input_ids=ids, attention_mask=mask)
    hook.remove()
    assert len(torch.unique(seen[0])) > 1


@pytest.mark.parametrize("layers", ["all", "last:2"])
def test_split_mode_with_all_experts_and_uniform_router_is_the_dense_mlp(layers):
    # 72 neurons into 5 experts: uneven groups, padded with zero neurons up to a multiple of 8.
    dense = _dense()
    moe = upcycle(dense, UpcycleRecipe(experts=5, top_k=5, layers=layers, mode="split", router_std=0.0))
    ids, mask = _batch()
    assert _max_logit_gap(dense, moe, ids, mask) < 1e-4


def test_split_mode_partitions_the_neurons():
    dense = _dense()
    moe = upcycle(dense, UpcycleRecipe(experts=4, top_k=2, mode="split", seed=7))
    width = split_width(72, 4)
    assert width % 8 == 0 and width >= 18
    gate = dense.model.layers[1].mlp.gate_proj.weight
    experts = moe.model.layers[1].mlp.experts
    rows = experts.gate_up_proj[:, :width]  # [E, width, H]: each expert's gate rows, zero-padded
    nonzero = rows.abs().sum(-1) > 0
    assert int(nonzero.sum()) == 72  # every neuron exactly once
    picked = torch.cat([rows[e][nonzero[e]] for e in range(4)])
    assert torch.equal(picked[picked[:, 0].argsort()], gate[gate[:, 0].argsort()])


def test_split_mode_top2_model_works_and_trains():
    dense = _dense()
    moe = upcycle(dense, UpcycleRecipe(experts=4, top_k=2, mode="split"))
    ids, mask = _batch()
    moe.train()
    optim = torch.optim.AdamW(moe.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        out = moe(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
        assert torch.isfinite(out.loss)
        out.loss.backward()
        optim.step()
        optim.zero_grad()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0]


def test_same_recipe_same_weights_and_dense_untouched():
    dense = _dense()
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    recipe = UpcycleRecipe(experts=4, top_k=2, mode="split", seed=5)
    a, b = upcycle(dense, recipe), upcycle(dense, recipe)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())
    other = upcycle(dense, UpcycleRecipe(experts=4, top_k=2, mode="split", seed=6))
    assert not torch.equal(a.model.layers[0].mlp.gate.weight, other.model.layers[0].mlp.gate.weight)


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (UpcycleRecipe(experts=0, top_k=1), "upcycle experts: must be >= 1, got 0"),
        (UpcycleRecipe(experts=2, top_k=3), "upcycle top_k: must be in [1, experts=2], got 3"),
        (UpcycleRecipe(experts=2, top_k=1, mode="merge"), "mode: must be one of copy, split"),
        (UpcycleRecipe(experts=2, top_k=1, layers="first:2"), "upcycle layers: must be 'all' or 'last:L'"),
        (UpcycleRecipe(experts=2, top_k=1, layers="last:9"), "1 <= L <= 3"),
        (UpcycleRecipe(experts=100, top_k=1, mode="split"), "at most one expert per neuron (72)"),
    ],
)
def test_bad_recipes_are_config_errors(recipe, message):
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")
    ):
        upcycle(_dense(), recipe)


def test_unsupported_dense_models_are_refused():
    with pytest.raises(ConfigError, match="attention_bias=True is not supported"):
        upcycle(_dense(attention_bias=True), UpcycleRecipe(experts=2, top_k=1))
    from moemix.testing import tiny_moe

    with pytest.raises(ConfigError, match="model_type 'mixtral' is not supported"):
        upcycle(tiny_moe("mixtral"), UpcycleRecipe(experts=2, top_k=1))


@pytest.mark.parametrize("layers", ["all", "last:1"])
def test_mistral_sliding_window_is_kept(layers):
    from transformers import MistralConfig

    config = MistralConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        sliding_window=6,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        dense = AutoModelForCausalLM.from_config(config).eval()
    moe = upcycle(dense, UpcycleRecipe(experts=3, top_k=2, layers=layers))
    ids, mask = _batch()  # 20 tokens: well past the window of 6
    assert _max_logit_gap(dense, moe, ids, mask) < 1e-4
