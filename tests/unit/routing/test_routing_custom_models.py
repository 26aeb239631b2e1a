"""Models moemix cannot read by structure: router_module, the output_router_logits path, and router layouts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers.modeling_outputs import MoeCausalLMOutputWithPast

from moemix.errors import RoutingError
from moemix.routing import (
    RoutersNotFoundError,
    capture_layers,
    count_by_group,
    expert_counts,
    find_moe_layers,
    select_moe_layers,
)
from moemix.routing.outputs import router_choices
from moemix.testing import padded_batch, tiny_moe

HIDDEN, EXPERTS, TOP_K, VOCAB = 16, 4, 2, 50


class Switch(nn.Module):
    """A router under a name moemix does not look for; returns (logits, weights, indices)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(HIDDEN, EXPERTS, bias=False)

    def forward(self, x):
        logits = self.proj(x)
        weights, indices = logits.softmax(-1).topk(TOP_K, dim=-1)
        return logits, weights, indices


class SparseBlock(nn.Module):
    """Remote-code style MoE block: experts in a ModuleList named ``experts_list``; keeps its last choice."""

    def __init__(self):
        super().__init__()
        self.switch = Switch()
        self.experts_list = nn.ModuleList(nn.Linear(HIDDEN, HIDDEN) for _ in range(EXPERTS))

    def forward(self, x):
        flat = x.reshape(-1, HIDDEN)
        logits, weights, indices = self.switch(flat)
        self.chosen = indices  # what the experts below receive: the test's reference
        out = torch.zeros_like(flat)
        for slot in range(TOP_K):
            for e, expert in enumerate(self.experts_list):
                rows = indices[:, slot] == e
                out[rows] += weights[rows, slot, None] * expert(flat[rows])
        return x + out.view_as(x), logits


class RemoteStyleMoE(nn.Module):
    """A causal LM in the style of remote-code MoE families (LLaMA-MoE): a dense first layer, then MoE layers,
    router logits returned only when asked through ``output_router_logits``."""

    def __init__(self, num_layers=3, config_flag=True):
        super().__init__()
        config = {"num_selects": TOP_K, "num_experts": EXPERTS, "vocab_size": VOCAB}
        if config_flag:
            config["output_router_logits"] = False
        self.config = SimpleNamespace(**config)
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.dense = nn.Linear(HIDDEN, HIDDEN)
        self.layers = nn.ModuleList(SparseBlock() for _ in range(num_layers - 1))
        self.head = nn.Linear(HIDDEN, VOCAB)
        self.forward_calls = 0

    def forward(self, input_ids, attention_mask=None, output_router_logits=None, labels=None):
        self.forward_calls += 1
        hidden = torch.tanh(self.dense(self.embed(input_ids)))
        all_logits = []
        for layer in self.layers:
            hidden, logits = layer(hidden)
            all_logits.append(logits)
        logits = self.head(hidden)
        wanted = output_router_logits
        if wanted is None:
            wanted = getattr(self.config, "output_router_logits", False)
        return MoeCausalLMOutputWithPast(logits=logits, router_logits=tuple(all_logits) if wanted else None)


class NoLogitsMoE(RemoteStyleMoE):
    """The same model without an ``output_router_logits`` switch: nothing tells moemix its routing."""

    def __init__(self):
        super().__init__(config_flag=False)

    def forward(self, input_ids, attention_mask=None, labels=None):
        return super().forward(input_ids, attention_mask, output_router_logits=False)


def small_padded_batch():
    """Three rows of 7 positions over this file's vocabulary: right-padded (5 tokens), left-padded (4), full."""
    return padded_batch(vocab_size=VOCAB, length=7, spans=((0, 5), (3, 7), (0, 7)), low=1)


def reference(model, input_ids, mask, layer):
    """Counts of the choices the block itself recorded, token by token, padding skipped."""
    chosen = model.layers[layer].chosen.view(*input_ids.shape, TOP_K)
    counts = torch.zeros(input_ids.shape[0], EXPERTS, dtype=torch.long)
    for b, s in zip(*torch.nonzero(mask, as_tuple=True)):
        for e in chosen[b, s].tolist():
            counts[b, e] += 1
    return counts


def test_unfound_routers_raise_an_error_naming_the_class_and_router_module():
    model = NoLogitsMoE()
    with pytest.raises(RoutersNotFoundError) as error:
        expert_counts(model, *small_padded_batch())
    message = str(error.value)
    assert message.startswith("NoLogitsMoE has no Mixture-of-Experts layer")
    assert "router_module (mixing.router_module in a moemix config)" in message
    assert "'model.layers.*.mlp.gate'" in message and "\n" not in message


def test_router_module_points_moemix_at_the_routers():
    model = NoLogitsMoE().eval()
    input_ids, mask = small_padded_batch()

    layers = find_moe_layers(model, router_module="layers.*.switch")
    counts = expert_counts(model, input_ids, mask, layer="all", router_module="layers.*.switch")

    assert [(layer.name, layer.layer_index, layer.num_experts, layer.top_k) for layer in layers] == [
        ("layers.0", 0, EXPERTS, TOP_K),
        ("layers.1", 1, EXPERTS, TOP_K),
    ]
    assert torch.equal(counts, torch.cat([reference(model, input_ids, mask, i) for i in (0, 1)], dim=1))
    assert counts[:, EXPERTS:].sum(dim=1).tolist() == [5 * TOP_K, 4 * TOP_K, 7 * TOP_K]


def test_router_module_matching_nothing_names_the_pattern_and_the_model():
    with pytest.raises(RoutingError, match=r"^router_module 'layers\.\*\.gate' matches no module of RemoteStyleMoE"):
        find_moe_layers(RemoteStyleMoE(), router_module="layers.*.gate")


def test_router_module_is_matched_through_a_wrapper_prefix():
    wrapper = nn.Module()
    wrapper.module = tiny_moe("mixtral")
    layers = find_moe_layers(wrapper, router_module="model.layers.*.mlp.gate")
    assert [layer.name for layer in layers] == ["module.model.layers.0.mlp", "module.model.layers.1.mlp"]
    # The experts beside the named router still take the indices: they stay the source of truth.
    assert all(layer.experts is layer.block.experts for layer in layers)


@pytest.mark.parametrize("layer", ["last", 0, "all", [1, 0]])
def test_output_router_logits_path_counts_each_layer_without_padding(layer):
    model = RemoteStyleMoE()
    model.train()
    input_ids, mask = small_padded_batch()

    counts = expert_counts(model, input_ids, mask, layer=layer)

    per_layer = {i: reference(model, input_ids, mask, i) for i in (0, 1)}
    chosen = {"last": [1], 0: [0], "all": [0, 1]}.get(layer if not isinstance(layer, list) else None, layer)
    assert torch.equal(counts, torch.cat([per_layer[i] for i in chosen], dim=1))
    assert model.forward_calls == 1
    assert model.training  # the mode is restored
    assert model.config.output_router_logits is False  # asked per call, never switched on for training


def test_output_router_logits_path_refuses_a_model_that_returns_none():
    model = RemoteStyleMoE()
    model.forward = lambda **kwargs: MoeCausalLMOutputWithPast(logits=torch.zeros(1))
    with pytest.raises(RoutingError, match="RemoteStyleMoE returned no router_logits"):
        expert_counts(model, *small_padded_batch())


def test_layers_all_and_lists_concatenate_in_the_given_order():
    model = tiny_moe("qwen3_moe", num_hidden_layers=3)
    input_ids, mask = small_padded_batch()
    per_layer = [expert_counts(model, input_ids, mask, layer=i) for i in range(3)]

    assert torch.equal(expert_counts(model, input_ids, mask, layer="all"), torch.cat(per_layer, dim=1))
    assert torch.equal(expert_counts(model, input_ids, mask, layer=[2, 0]), torch.cat([per_layer[2], per_layer[0]], 1))
    assert [layer.index for layer in select_moe_layers(model, [-1, 0])] == [2, 0]
    for bad in ([], [0, 0], [3], "middle", [True]):
        with pytest.raises(RoutingError, match="routing layer"):
            select_moe_layers(model, bad)


def test_capture_layers_records_each_chosen_layer_once_per_forward():
    model = tiny_moe("mixtral", num_hidden_layers=3).eval()
    input_ids, mask = small_padded_batch()
    with torch.no_grad(), capture_layers(model, [2, 0]) as captures:
        model(input_ids=input_ids, attention_mask=mask)
        captures[0].active = False  # an inactive capture skips forwards (e.g. evaluation during training)
        model(input_ids=input_ids, attention_mask=mask)
    assert [capture.layer.index for capture in captures] == [2, 0]
    assert [len(capture.indices) for capture in captures] == [1, 2]


def test_count_by_group_counts_each_groups_tokens_in_one_scatter():
    indices = torch.tensor([[0, 1], [1, 2], [3, 4], [2, 2], [0, -1], [3, 1]])
    groups = torch.tensor([1, 0, -1, 1, 0, 7])  # -1 padding, 7 outside the 2 groups: neither counts
    out = torch.ones(2, 4, dtype=torch.long)

    counts = count_by_group(indices, groups, num_groups=2, num_experts=4, out=out)

    assert counts is out
    assert counts.tolist() == [[1 + 1, 1 + 1, 1 + 1, 1], [1 + 1, 1 + 1, 1 + 2, 1]]
    with pytest.raises(RoutingError, match="routed 6 tokens but the mask covers 2 x 2 = 4"):
        count_by_group(indices, torch.zeros(2, 2), 2, 4)


def test_sorted_dispatch_output_is_read_exactly():
    # 3 tokens, top-2, 4 experts: choices [[2, 0], [1, 2], [3, 0]], flattened, sorted by expert.
    choices = torch.tensor([[2, 0], [1, 2], [3, 0]])
    flat = choices.flatten()
    _, sorted_slots = flat.sort(stable=True)
    sizes = torch.bincount(flat, minlength=4).tolist()
    output = (sorted_slots, sorted_slots // 2, torch.rand(6), sizes, torch.randn(3, 4))

    assert torch.equal(router_choices(output, num_experts=4, top_k=2), choices)


def test_dense_scores_give_the_nonzero_experts_and_plain_logits_are_refused():
    logits = torch.randn(5, 4)
    top = logits.topk(2, dim=-1)
    scores = torch.zeros(5, 4).scatter(1, top.indices, top.values.sigmoid())
    scores[0] = 0.0  # a token whose chosen scores underflowed: nothing counted for it

    chosen = router_choices((scores, logits), num_experts=4, top_k=2, check_scores=True)

    assert chosen[0].tolist() == [-1, -1]
    assert torch.equal(chosen[1:].sort(dim=-1).values, top.indices[1:].sort(dim=-1).values)
    with pytest.raises(RoutingError, match="more than top_k=2 nonzero values"):
        router_choices((logits.exp(), logits), num_experts=4, top_k=2, check_scores=True)


def test_count_mask_counts_a_subset_while_the_model_attends_by_the_attention_mask():
    model = tiny_moe("qwen3_moe", seed=4)
    input_ids, mask = small_padded_batch()
    prompt = torch.zeros_like(mask)
    prompt[:, :3] = 1
    answer = mask * (1 - prompt)

    everything = expert_counts(model, input_ids, mask)
    prompt_counts = expert_counts(model, input_ids, mask, count_mask=mask * prompt)
    answer_counts = expert_counts(model, input_ids, mask, count_mask=answer)

    assert torch.equal(prompt_counts + answer_counts, everything)
    assert answer_counts.sum(dim=1).tolist() == (answer.sum(dim=1) * 2).tolist()
