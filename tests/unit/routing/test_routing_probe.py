"""The probe counts exactly what one full forward per batch counts, in fewer forwards that stop at the read layer."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from moemix.data.render import IGNORE_INDEX
from moemix.routing import expert_counts, find_moe_layers
from moemix.routing.probe import GroupedRows, grouped_counts, merge_rows, needs_no_padding_mask, rows_of
from moemix.testing import random_dev_batches, tiny_moe
from moemix.train.callback import probe_loads

VOCAB = 256

# Expert-module hooks (mixtral, gpt_oss with sliding-window attention, qwen3_next with linear attention), a dense
# first layer (deepseek_v3), router-only hooks (jetmoe: sorted dispatch; llama4_text: dense scores).
ARCHS = ["mixtral", "gpt_oss", "qwen3_next", "deepseek_v3", "jetmoe", "llama4_text"]


dev_batches = partial(random_dev_batches, length=20, vocab_size=VOCAB)
"""Right-padded batches of different lengths; the first 3 tokens of a row are a prompt without labels."""


def one_forward_per_batch(model, probe, layer="last", count_prompt_tokens=True) -> np.ndarray:
    """The counts as the probe computed them before: expert_counts on each batch, summed per dataset."""
    rows = []
    for batches in probe:
        total = 0
        for batch in batches:
            counted = None if count_prompt_tokens else batch["attention_mask"] * (batch["labels"] != IGNORE_INDEX)
            counts = expert_counts(model, batch["input_ids"], batch["attention_mask"], layer, count_mask=counted)
            total = total + counts.sum(dim=0).numpy()
        rows.append(total)
    return np.stack(rows).astype(np.int64)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("layer", ["last", "all"])
def test_probe_counts_equal_one_full_forward_per_batch(arch, layer):
    model = tiny_moe(arch, seed=3)
    probe = [dev_batches(seed) for seed in range(3)]

    assert np.array_equal(probe_loads(model, probe, layer), one_forward_per_batch(model, probe, layer))


@pytest.mark.parametrize("arch", ["mixtral", "deepseek_v3"])
def test_probe_counts_only_loss_tokens_as_before(arch):
    model = tiny_moe(arch, seed=4)
    probe = [dev_batches(seed) for seed in range(3)]

    loads = probe_loads(model, probe, count_prompt_tokens=False)

    assert np.array_equal(loads, one_forward_per_batch(model, probe, count_prompt_tokens=False))


def test_probe_stops_after_the_read_layer_without_later_layers_or_logits():
    model = tiny_moe("mixtral", num_hidden_layers=4)
    layers = find_moe_layers(model)
    calls = {"lm_head": 0, "last layer": 0, "experts read": 0, "norm": 0}
    hooks = [
        model.lm_head.register_forward_hook(lambda *a: calls.__setitem__("lm_head", calls["lm_head"] + 1)),
        model.model.norm.register_forward_hook(lambda *a: calls.__setitem__("norm", calls["norm"] + 1)),
        model.model.layers[3].register_forward_hook(
            lambda *a: calls.__setitem__("last layer", calls["last layer"] + 1)
        ),
        layers[2].experts.register_forward_hook(
            lambda *a: calls.__setitem__("experts read", calls["experts read"] + 1)
        ),
    ]
    probe = [dev_batches(seed) for seed in range(2)]

    loads = probe_loads(model, probe, layer=2)

    assert calls == {"lm_head": 0, "last layer": 0, "experts read": 0, "norm": 0}
    assert np.array_equal(loads, one_forward_per_batch(model, probe, layer=2))
    for hook in hooks:
        hook.remove()
    # Nothing is left behind: no hook on the experts, train mode back, and a normal forward still runs whole.
    assert all(not layer.experts._forward_pre_hooks for layer in layers)
    assert model.training
    batch = probe[0][0]
    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss.backward()


def test_rows_of_several_datasets_merge_into_few_forwards_with_the_same_counts():
    model = tiny_moe("qwen2_moe", seed=5)
    probe = [dev_batches(seed, count=3) for seed in range(4)]
    rows = [rows_of(batch, group) for group, batches in enumerate(probe) for batch in batches]
    forwards = []
    hook = model.model.embed_tokens.register_forward_hook(lambda module, args, output: forwards.append(args[0].shape))

    merged = grouped_counts(model, rows, 4)
    together = len(forwards)
    one_each = grouped_counts(model, rows, 4, max_tokens=1)
    hook.remove()

    assert torch.equal(merged, one_each)
    assert np.array_equal(merged.numpy(), one_forward_per_batch(model, probe))
    assert together < len(rows)  # fewer forwards than the 12 batches
    assert len(forwards) - together == 36  # with a budget of 1 token: one forward per row


def test_transformers_models_probe_without_the_padding_mask_and_count_the_same():
    # Right padding under causal attention: no real token reads a padding position, so the mask is left out
    # (the attention's causal path) and the counts stay those of masked forwards.
    model = tiny_moe("gpt_oss", seed=2)  # sliding-window layers: their masks are built without a padding mask too
    masks = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: masks.append(kwargs.get("attention_mask")), with_kwargs=True
    )
    probe = [dev_batches(seed) for seed in range(3)]

    loads = probe_loads(model, probe)
    hook.remove()

    assert masks and all(mask is None for mask in masks)
    assert np.array_equal(loads, one_forward_per_batch(model, probe))
    assert needs_no_padding_mask(model)
    assert not needs_no_padding_mask(LogitsOnlyMoE())  # remote code: its attention may not be causal by default


def test_merged_forwards_kept_in_plans_are_reused_by_the_next_call():
    model = tiny_moe("mixtral", seed=1)
    rows = [
        rows_of(batch, group) for group, batches in enumerate([dev_batches(s) for s in range(3)]) for batch in batches
    ]
    plans = {}

    first = grouped_counts(model, rows, 3, plans=plans)
    (kept,) = plans.values()
    second = grouped_counts(model, rows, 3, plans=plans)

    assert torch.equal(first, second) and torch.equal(first, grouped_counts(model, rows, 3))
    assert len(plans) == 1 and next(iter(plans.values())) is kept  # merged once, read back


@pytest.mark.parametrize("forward_cost", [0, 50, 10**6])
def test_merge_rows_sorts_by_length_keeps_every_token_and_respects_the_budget(forward_cost):
    batches = [rows_of(batch, group) for group, batch in enumerate(dev_batches(7, count=4))]

    merged = merge_rows(batches, max_tokens=60, forward_cost=forward_cost)

    assert all(rows.input_ids.numel() <= 60 or rows.input_ids.shape[0] == 1 for rows in merged)
    lengths = [int(n) for rows in merged for n in rows.attention_mask.sum(dim=1)]
    assert lengths == sorted(lengths, reverse=True)
    for group in range(4):
        tokens = sorted(int(t) for b in [batches[group]] for t in b.input_ids[b.attention_mask.bool()])
        merged_tokens = sorted(int(t) for rows in merged for t in rows.input_ids[rows.groups == group])
        assert tokens == merged_tokens
    again = merge_rows(batches, max_tokens=60, forward_cost=forward_cost)
    assert all(a.input_ids.equal(b.input_ids) for a, b in zip(again, merged))  # deterministic
    if forward_cost == 0:  # no cost per forward: no padding at all
        assert all(bool(rows.attention_mask.all()) for rows in merged)
    if forward_cost == 10**6:  # forwards cost most: as few as the budget allows
        assert len(merged) == len(merge_rows(batches, max_tokens=60, forward_cost=10**9))


def test_left_padded_rows_are_refused():
    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long), "attention_mask": torch.tensor([[0, 1, 1, 1]])}
    with pytest.raises(Exception, match="right-padded"):
        grouped_counts(tiny_moe("mixtral"), [rows_of(batch, 0)], 1)


def test_an_empty_probe_counts_zeros_of_the_right_width():
    model = tiny_moe("deepseek_v3")
    loads = probe_loads(model, [[], []])
    assert loads.shape == (2, find_moe_layers(model)[-1].num_experts) and not loads.any()


def test_grouped_rows_count_in_their_own_group():
    model = tiny_moe("olmoe")
    batch = dev_batches(9, count=1)[0]
    groups = torch.where(torch.arange(20) < 10, 0, 1).expand(3, 20).masked_fill(batch["attention_mask"] == 0, -1)

    counts = grouped_counts(model, [GroupedRows(batch["input_ids"], batch["attention_mask"], groups)], 2)

    assert counts.sum(dim=1).tolist() == [2 * int((groups == 0).sum()), 2 * int((groups == 1).sum())]


class LogitsOnlyMoE(torch.nn.Module):
    """A remote-code style causal LM with no router moemix finds by structure: its routing is read through
    ``output_router_logits`` (top-k of each layer's logits), the whole model running."""

    def __init__(self, experts: int = 4, layers: int = 2):
        super().__init__()
        self.config = type("Config", (), {"output_router_logits": False, "num_selects": 2, "num_experts": experts})()
        self.embed = torch.nn.Embedding(VOCAB, 16)
        self.switches = torch.nn.ModuleList(torch.nn.Linear(16, experts) for _ in range(layers))
        self.mix = torch.nn.ModuleList(torch.nn.Linear(16, 16) for _ in range(layers))
        self.head = torch.nn.Linear(16, VOCAB)

    def forward(self, input_ids, attention_mask=None, output_router_logits=None):
        hidden = self.embed(input_ids)
        logits = []
        for switch, mix in zip(self.switches, self.mix):
            # A causal running mean mixes the tokens, so that rows and padding matter as in attention.
            steps = torch.arange(1, hidden.shape[1] + 1, device=hidden.device).view(1, -1, 1)
            hidden = hidden + torch.tanh(mix(hidden.cumsum(dim=1) / steps))
            logits.append(switch(hidden).reshape(-1, self.config.num_experts))
        return {"logits": self.head(hidden), "router_logits": tuple(logits) if output_router_logits else None}


@pytest.mark.parametrize("layer", ["last", "all"])
def test_a_model_read_through_router_logits_probes_the_same_counts(layer):
    torch.manual_seed(0)
    model = LogitsOnlyMoE()
    probe = [dev_batches(seed) for seed in range(3)]

    assert np.array_equal(probe_loads(model, probe, layer), one_forward_per_batch(model, probe, layer))
