"""expert_counts and capture_routing record what the experts receive, once per step, per sample, without padding."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from moemix.errors import RoutingError
from moemix.routing import capture_routing, count_choices, expert_counts, find_moe_layers
from moemix.testing import TINY_ARCHS, padded_batch, tiny_moe

VOCAB = 256
SEQ = 12


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_rows_sum_to_real_tokens_times_top_k(arch):
    model = tiny_moe(arch)
    input_ids, attention_mask = padded_batch()

    layer = find_moe_layers(model)[-1]

    counts = expert_counts(model, input_ids, attention_mask)

    assert counts.dtype == torch.long
    assert counts.shape == (3, layer.num_experts)
    assert (counts >= 0).all()
    expected = [8 * layer.top_k, 5 * layer.top_k, 12 * layer.top_k]
    if arch == "longcat_flash":  # choices of its zero (identity) experts are not counted
        assert all(0 < n <= m for n, m in zip(counts.sum(dim=1).tolist(), expected))
    else:
        assert counts.sum(dim=1).tolist() == expected


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_a_sample_counts_the_same_alone_and_right_padded_in_a_batch(arch):
    model = tiny_moe(arch, seed=1)
    generator = torch.Generator().manual_seed(2)
    short = torch.randint(3, VOCAB, (1, 7), generator=generator)
    long = torch.randint(3, VOCAB, (1, SEQ), generator=generator)
    batch = torch.cat([torch.cat([short, torch.zeros(1, SEQ - 7, dtype=torch.long)], dim=1), long])
    mask = (torch.arange(SEQ) < torch.tensor([[7], [SEQ]])).long()

    together = expert_counts(model, batch, mask)

    assert torch.equal(together[0], expert_counts(model, short, torch.ones_like(short))[0])
    assert torch.equal(together[1], expert_counts(model, long, torch.ones_like(long))[0])


@pytest.mark.parametrize("arch", ["mixtral", "deepseek_v3"])
def test_each_layer_can_be_counted(arch):
    model = tiny_moe(arch, num_hidden_layers=3)
    input_ids, attention_mask = padded_batch()
    layers = find_moe_layers(model)

    per_layer = [expert_counts(model, input_ids, attention_mask, layer=i) for i in range(len(layers))]

    assert torch.equal(per_layer[-1], expert_counts(model, input_ids, attention_mask, layer="last"))
    for counts in per_layer:
        assert counts.sum(dim=1).tolist() == [16, 10, 24]
    # Random layers route differently; equal counts everywhere would mean the layer choice is ignored.
    assert not all(torch.equal(per_layer[0], c) for c in per_layer[1:])


def test_capture_records_every_forward_and_take_empties_it():
    model = tiny_moe("qwen3_moe").eval()
    input_ids, attention_mask = padded_batch()

    with torch.no_grad(), capture_routing(model, layer=0) as capture:
        model(input_ids=input_ids, attention_mask=attention_mask)
        model(input_ids=input_ids[:1, :5])
        taken = capture.take()
        model(input_ids=input_ids[:2])

    assert [t.shape for t in taken] == [(36, 2), (5, 2)]
    assert [t.shape for t in capture.indices] == [(24, 2)]
    assert torch.equal(taken[0][:5], taken[1])  # causal: the first 5 tokens route alike in both calls
    assert capture.layer == find_moe_layers(model)[0]


def test_hooks_are_removed_on_exit_and_on_exceptions():
    model = tiny_moe("gpt_oss")
    experts = find_moe_layers(model)[-1].experts

    with capture_routing(model):
        assert len(experts._forward_pre_hooks) == 1
    assert not experts._forward_pre_hooks

    with pytest.raises(ValueError, match="boom"):
        with capture_routing(model):
            raise ValueError("boom")
    assert not experts._forward_pre_hooks

    with pytest.raises(RoutingError):
        with capture_routing(model, layer=7):
            pass
    assert not experts._forward_pre_hooks


def test_expert_counts_restores_every_module_mode():
    model = tiny_moe("phimoe", router_jitter_noise=0.5)
    model.train()
    model.model.layers[0].eval()
    before = {name: module.training for name, module in model.named_modules()}
    input_ids, attention_mask = padded_batch()

    first = expert_counts(model, input_ids, attention_mask)
    second = expert_counts(model, input_ids, attention_mask)

    assert {name: module.training for name, module in model.named_modules()} == before
    # Counted in eval mode: PhiMoE's router jitter (train only) would make two runs differ.
    assert torch.equal(first, second)


def test_expert_counts_through_distributed_data_parallel(tmp_path):
    model = tiny_moe("mixtral")
    input_ids, attention_mask = padded_batch()
    expected = expert_counts(model, input_ids, attention_mask)

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        wrapped = DistributedDataParallel(model)
        assert find_moe_layers(wrapped)[-1].name == "module.model.layers.1.mlp"
        assert torch.equal(expert_counts(wrapped, input_ids, attention_mask), expected)
    finally:
        dist.destroy_process_group()


def test_count_choices_counts_per_sample_and_skips_masked_tokens_and_zero_experts():
    # 2 samples x 3 positions, top-2, 4 experts; index 4 is a "zero expert" and -1 a dropped slot.
    indices = torch.tensor([[0, 1], [1, 2], [3, 4], [2, 2], [0, -1], [3, 1]])
    token_mask = torch.tensor([[1, 1, 1], [1, 0, 1]])

    counts = count_choices(indices, token_mask, num_experts=4)

    assert counts.tolist() == [[1, 2, 1, 1], [0, 1, 2, 1]]


def test_count_choices_without_mask_counts_every_token_as_one_sample():
    indices = torch.tensor([[0, 1], [1, 2], [1, 0]])
    assert count_choices(indices, None, num_experts=3).tolist() == [[2, 3, 1]]


def test_count_choices_rejects_shapes_that_do_not_fit():
    with pytest.raises(RoutingError, match="routed 6 tokens but the mask covers 2 x 4 = 8"):
        count_choices(torch.zeros(6, 2, dtype=torch.long), torch.ones(2, 4), num_experts=4)
    with pytest.raises(RoutingError, match=r"must be \[tokens, top_k\]"):
        count_choices(torch.zeros(2, 3, 2, dtype=torch.long), torch.ones(2, 3), num_experts=4)


@pytest.mark.parametrize("arch", ["olmoe", "deepseek_v3"])
def test_capture_reads_indices_passed_by_keyword(arch):
    layer = find_moe_layers(tiny_moe(arch))[-1]
    hidden = torch.randn(5, 32)
    _, weights, indices = layer.router(hidden)

    with torch.no_grad(), capture_routing(_Holder(layer.block)) as capture:
        layer.experts(hidden_states=hidden, top_k_index=indices, top_k_weights=weights)

    assert len(capture.indices) == 1
    assert torch.equal(capture.indices[0], indices)


class _Holder(torch.nn.Module):
    """A model holding just one MoE block, so that capture_routing finds it."""

    def __init__(self, block):
        super().__init__()
        self.block = block
