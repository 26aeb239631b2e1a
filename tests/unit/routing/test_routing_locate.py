"""find_moe_layers finds the MoE blocks of real tiny HF models, skips dense layers and refuses dense models."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from moemix.errors import RoutingError
from moemix.routing import capture_routing, find_moe_layers, select_moe_layer
from moemix.routing.locate import index_argument
from moemix.testing import TINY_ARCHS, tiny_moe

# Read from the routers' outputs: JetMoE's grouped experts and Llama 4's dense experts take no indices.
ROUTER_READ = {"jetmoe", "llama4_text"}


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_finds_each_moe_block_with_its_router_and_experts(arch):
    model = tiny_moe(arch)
    layers = find_moe_layers(model)

    assert layers and [layer.index for layer in layers] == list(range(len(layers)))
    for layer in layers:
        assert model.get_submodule(layer.name) is layer.block
        assert layer.router is getattr(layer.block, "gate", None) or layer.router is layer.block.router
        assert layer.experts is (None if arch in ROUTER_READ else layer.block.experts)
        assert layer.top_k == (1 if arch == "zaya" else 2)
        assert layer.num_experts == (8 if arch == "deepseek_v3" else 4)


@pytest.mark.parametrize(
    ("arch", "overrides", "expected"),
    [
        ("mixtral", {"num_hidden_layers": 4}, [0, 1, 2, 3]),
        ("deepseek_v3", {"num_hidden_layers": 4, "first_k_dense_replace": 2}, [2, 3]),
        ("qwen2_moe", {"mlp_only_layers": [0, 2], "num_hidden_layers": 4}, [1, 3]),
        ("qwen3_moe", {"decoder_sparse_step": 2, "num_hidden_layers": 4}, [1, 3]),
    ],
)
def test_skips_dense_layers(arch, overrides, expected):
    layers = find_moe_layers(tiny_moe(arch, **overrides))

    assert [layer.layer_index for layer in layers] == expected
    assert [layer.index for layer in layers] == list(range(len(expected)))


def test_dense_model_raises_a_one_line_error_naming_the_class():
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
    )
    with pytest.raises(RoutingError, match="^LlamaForCausalLM has no Mixture-of-Experts layer") as error:
        find_moe_layers(LlamaForCausalLM(config))
    assert "\n" not in str(error.value)


def test_finds_layers_through_a_wrapper_and_names_the_inner_class():
    class Wrapper(nn.Module):
        """Holds the model in .module, as DDP and DeepSpeed do."""

        def __init__(self, module):
            super().__init__()
            self.module = module

    model = tiny_moe("olmoe")
    layers = find_moe_layers(Wrapper(model))
    assert [layer.name for layer in layers] == ["module.model.layers.0.mlp", "module.model.layers.1.mlp"]
    assert layers[1].block is model.model.layers[1].mlp

    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    with pytest.raises(RoutingError, match="^LlamaForCausalLM has no"):
        find_moe_layers(Wrapper(LlamaForCausalLM(config)))


def test_select_moe_layer_accepts_last_first_and_indices_and_rejects_others():
    model = tiny_moe("mixtral", num_hidden_layers=3)
    layers = find_moe_layers(model)

    assert select_moe_layer(model, "last") == layers[2]
    assert select_moe_layer(model, "first") == layers[0]
    assert select_moe_layer(model, 1) == layers[1]
    assert select_moe_layer(model, -3) == layers[0]
    for bad in (3, -4, "middle", True):
        with pytest.raises(RoutingError, match="routing layer .* MixtralForCausalLM has 3 MoE layer"):
            select_moe_layer(model, bad)


@pytest.mark.parametrize(("arch", "expected"), [("mixtral", ("top_k_index", 1)), ("gpt_oss", ("router_indices", 1))])
def test_index_argument_reads_the_original_experts_signature(arch, expected):
    assert index_argument(find_moe_layers(tiny_moe(arch))[0].experts) == expected


class _TopTwoRouter(nn.Module):
    """A router in the transformers 5 layout: returns (logits, weights, indices)."""

    def __init__(self, hidden, num_experts, return_indices=True):
        super().__init__()
        self.top_k = 2
        self.num_experts = num_experts
        self.proj = nn.Linear(hidden, num_experts, bias=False)
        self.return_indices = return_indices

    def forward(self, x):
        logits = self.proj(x)
        weights, indices = logits.softmax(-1).topk(self.top_k, dim=-1)
        return (logits, weights, indices) if self.return_indices else logits


class _ListMoe(nn.Module):
    """An older-style MoE block: its experts are a ModuleList, so only the router tells the choice."""

    def __init__(self, hidden=8, num_experts=4, return_indices=True):
        super().__init__()
        self.gate = _TopTwoRouter(hidden, num_experts, return_indices)
        self.experts = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_experts))

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        out = self.gate(flat)
        logits = out[0] if isinstance(out, tuple) else out
        weights, indices = logits.softmax(-1).topk(2, dim=-1)
        result = torch.zeros_like(flat)
        for slot in range(2):
            for e, expert in enumerate(self.experts):
                chosen = indices[:, slot] == e
                result[chosen] += weights[chosen, slot, None] * expert(flat[chosen])
        return result.view_as(x)


def test_block_without_indexed_experts_is_read_from_its_router():
    torch.manual_seed(0)
    model = nn.Sequential(_ListMoe(), _ListMoe())
    layers = find_moe_layers(model)
    assert [(layer.name, layer.layer_index, layer.experts, layer.num_experts, layer.top_k) for layer in layers] == [
        ("0", 0, None, 4, 2),
        ("1", 1, None, 4, 2),
    ]

    x = torch.randn(3, 5, 8)
    with capture_routing(model) as capture:
        model(x)
    expected = model[1].gate.proj(model[0](x).reshape(-1, 8)).topk(2, dim=-1).indices
    assert len(capture.indices) == 1
    assert torch.equal(capture.indices[0], expected)


def test_router_returning_no_indices_raises_when_it_runs():
    model = nn.Sequential(_ListMoe(return_indices=False))
    with pytest.raises(RoutingError, match=r"router returns \(float32\[6, 4\]\): moemix reads one integer tensor"):
        with capture_routing(model):
            model(torch.randn(2, 3, 8))
    assert not model[0].gate._forward_hooks
