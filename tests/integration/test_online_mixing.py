"""The online source: real Trainer, tiny real MoE; the training forwards are the signal, with no extra forward."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from transformers import TrainerCallback

from moemix.config import load_config
from moemix.data.packing import PackingCollator
from moemix.data.render import IGNORE_INDEX
from moemix.errors import ConfigError, RoutingError
from moemix.files import read_jsonl
from moemix.routing import capture_layers, expert_counts, find_moe_layers
from moemix.testing import TINY_ARCHS, tiny_moe, tiny_run_config
from moemix.train import prepare_run
from moemix.train.callback import probe_loads
from moemix.train.online import OnlineExpertCounts


def config_text(arch="mixtral", source="probe", layers="last", accumulation=1, **mixing):
    return tiny_run_config(
        ("dialogue", "math", "code"),
        120,
        arch=arch,
        seed=5,
        mixing={"interval": 4, "probe_batches": 2, "source": source, "layers": layers, **mixing},
        training={"max_steps": 12, "gradient_accumulation_steps": accumulation, "learning_rate": 0.003},
    )


class ForwardsDuringTraining(TrainerCallback):
    """Counts every forward of the model between the start and the end of ``trainer.train()``."""

    def __init__(self, model):
        self.calls, self.training = 0, False
        model.register_forward_pre_hook(self._count)

    def _count(self, module, args):
        self.calls += self.training

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False


def run(tmp_path, monkeypatch, source, arch="mixtral", layers="last", accumulation=1, extra=()):
    out = tmp_path / source
    text = config_text(arch, source, layers, accumulation)
    prepared = prepare_run(load_config(text=text, overrides=[f"--output_dir={out}", *extra]))
    forwards = ForwardsDuringTraining(prepared.trainer.model)
    prepared.trainer.add_callback(forwards)
    result = prepared.train()
    return prepared, result, read_jsonl(out / "mixture.jsonl"), forwards.calls


def test_online_and_probe_both_learn_weights_and_online_adds_no_forward(tmp_path, monkeypatch):
    online, online_result, online_log, online_forwards = run(tmp_path, monkeypatch, "online")
    probe, probe_result, probe_log, probe_forwards = run(tmp_path, monkeypatch, "probe")

    uniform = np.full(3, 1 / 3)
    for log in (online_log, probe_log):
        assert [record["step"] for record in log] == [4, 8, 12]
        assert all(abs(sum(record["weights"].values()) - 1) < 1e-9 for record in log)
        assert not np.allclose(list(log[-1]["weights"].values()), uniform, atol=1e-3)
    assert online_result.updates == probe_result.updates == 3
    # Online: exactly one forward per training micro-batch. Probe: plus, per update, the 3 datasets x 2 batches
    # merged into fewer (early-stopped) forwards than batches.
    assert online_forwards == 12
    assert 12 + 3 <= probe_forwards < 12 + 3 * (3 * 2)
    assert online.trainer.online_counts.forwards == 12
    assert probe.trainer.online_counts is None
    # Online loads count the training tokens of each window: padding excluded, every dataset drawn.
    num_experts = find_moe_layers(online.trainer.model)[-1].num_experts
    assert all(len(loads) == num_experts for loads in online_log[0]["loads"].values())


@pytest.mark.parametrize("source", ["online", "probe"])
@pytest.mark.parametrize("arch", ["jetmoe", "llama4_text", "deepseek_v3", "zaya"])
def test_both_sources_train_architectures_read_from_their_routers_or_dense_first(tmp_path, monkeypatch, arch, source):
    # JetMoE (sorted dispatch) and Llama 4 (dense scores) are read from their routers' outputs; DeepSeek-V3 has
    # a dense first layer and group-limited routing; ZAYA routes top-1.
    prepared, result, log, forwards = run(
        tmp_path, monkeypatch, source, arch=arch, extra=["--max_steps=4", "--mixing.interval=2"]
    )
    assert [record["step"] for record in log] == [2, 4]
    assert not np.allclose(list(log[-1]["weights"].values()), np.full(3, 1 / 3), atol=1e-4)
    if source == "online":
        assert forwards == 4
    else:  # per update, fewer merged forwards than the 3 datasets x 2 batches
        assert 4 + 2 <= forwards < 4 + 2 * 3 * 2


def test_online_source_still_probes_dev_loss_for_a_policy_that_needs_it(tmp_path, monkeypatch):
    reference = tmp_path / "ref.json"
    reference.write_text('{"dialogue": 0.0, "math": 0.0, "code": 0.0}')
    extra = ["--max_steps=4", "--mixing.interval=2", "--mixing.policy=refloss", f"--mixing.reference={reference}"]
    prepared, result, log, forwards = run(tmp_path, monkeypatch, "online", extra=extra)
    assert all(0 < loss < 20 for record in log for loss in record["dev_loss"].values())
    assert prepared.trainer.online_counts.forwards == 4


def test_online_counts_every_micro_batch_with_gradient_accumulation(tmp_path, monkeypatch):
    prepared, result, log, forwards = run(tmp_path, monkeypatch, "online", accumulation=2, layers="all")

    assert forwards == 12 * 2 == prepared.trainer.online_counts.forwards
    width = sum(layer.num_experts for layer in find_moe_layers(prepared.trainer.model))
    assert [len(next(iter(record["loads"].values()))) for record in log] == [width] * 3


def test_online_source_refuses_a_model_read_only_through_router_logits():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4))
    model.config = SimpleNamespace(output_router_logits=False)  # remote-code style: logits only, no router found
    with pytest.raises(RoutingError, match=r"^Sequential has no Mixture-of-Experts layer .* use mixing.source probe"):
        OnlineExpertCounts(model, 2)


def test_a_layer_the_model_lacks_stops_the_run_before_training(tmp_path):
    text = config_text(source="online")
    config = load_config(text=text, overrides=[f"--output_dir={tmp_path / 'run'}", "--mixing.layers=5"])
    with pytest.raises(RoutingError, match=r"^mixing.layers: routing layer 5 is not .* has 2 MoE layer"):
        prepare_run(config)


def batches_of_three_datasets(seed=0):
    """Two right-padded batches mixing datasets 0-2, with prompt tokens (label -100) at each row's start."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for lengths, datasets in (([9, 5, 12], [0, 2, 1]), ([7, 12, 3], [1, 1, 0])):
        input_ids = torch.zeros(3, 12, dtype=torch.long)
        labels = torch.full((3, 12), IGNORE_INDEX)
        mask = torch.zeros(3, 12, dtype=torch.long)
        for row, length in enumerate(lengths):
            input_ids[row, :length] = torch.randint(3, 256, (length,), generator=generator)
            mask[row, :length] = 1
            labels[row, 2:length] = input_ids[row, 2:length]  # the first two tokens are the prompt
        batches.append(({"input_ids": input_ids, "attention_mask": mask, "labels": labels}, torch.tensor(datasets)))
    return batches


@pytest.mark.parametrize(
    ("arch", "count_prompt_tokens"),
    [(arch, True) for arch in TINY_ARCHS] + [("qwen2_moe", False), ("deepseek_v3", False), ("jetmoe", False)],
)
def test_online_counts_equal_per_dataset_expert_counts_of_the_same_forwards(arch, count_prompt_tokens):
    model = tiny_moe(arch, seed=2).eval()
    online = OnlineExpertCounts(model, 3, layers="all", count_prompt_tokens=count_prompt_tokens)
    expected = np.zeros((3, online.width), dtype=np.int64)
    try:
        for batch, datasets in batches_of_three_datasets():
            with torch.no_grad(), online.counting(batch, datasets):
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            counted = batch["attention_mask"] if count_prompt_tokens else (batch["labels"] != IGNORE_INDEX).long()
            # Reference: the same forward's choices, counted token by token into each token's dataset.
            with torch.no_grad(), capture_layers(model, "all") as captures:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            offset = 0
            for capture in captures:
                chosen = capture.indices[0].view(3, 12, -1)
                for row, column in torch.nonzero(counted).tolist():
                    for expert in chosen[row, column].tolist():
                        if expert < capture.layer.num_experts:  # LongCat's zero experts are no experts
                            expected[datasets[row], offset + expert] += 1
                offset += capture.layer.num_experts
            # A forward outside counting() (evaluation, a probe) adds nothing.
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        counts = online.read()
    finally:
        online.close()

    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(online.read(), np.zeros_like(expected))  # read resets the window
    assert not any(layer.experts._forward_pre_hooks for layer in find_moe_layers(model) if layer.experts)


def test_online_counts_are_the_same_with_gradient_checkpointing():
    def window(checkpointing):
        model = tiny_moe("olmoe", seed=4)
        model.config.use_cache = False
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        online = OnlineExpertCounts(model, 3, layers="all")
        model.train()
        for batch, datasets in batches_of_three_datasets(seed=1):
            with online.counting(batch, datasets):
                loss = model(**batch).loss
            loss.backward()
        return online.read()

    plain = window(False)
    np.testing.assert_array_equal(plain, window(True))
    assert plain.sum() == 2 * (9 + 5 + 12 + 7 + 12 + 3) * 2  # 2 layers x real tokens x top-2


def test_online_counts_round_trip_through_a_checkpoint_state():
    model = tiny_moe("mixtral", seed=1).eval()
    (first, first_ids), (second, second_ids) = batches_of_three_datasets(seed=3)
    straight = OnlineExpertCounts(model, 3, layers="all")
    with torch.no_grad():
        for batch, ids in ((first, first_ids), (second, second_ids)):
            with straight.counting(batch, ids):
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    expected = straight.read()
    straight.close()

    before = OnlineExpertCounts(model, 3, layers="all")
    with torch.no_grad(), before.counting(first, first_ids):
        model(input_ids=first["input_ids"], attention_mask=first["attention_mask"])
    state = before.state_dict()
    before.close()
    resumed = OnlineExpertCounts(model, 3, layers="all")
    resumed.load_state_dict(state)
    with torch.no_grad(), resumed.counting(second, second_ids):
        model(input_ids=second["input_ids"], attention_mask=second["attention_mask"])

    np.testing.assert_array_equal(resumed.read(), expected)
    assert resumed.forwards == 2
    with pytest.raises(Exception, match="do not fit"):
        OnlineExpertCounts(model, 3, layers="last").load_state_dict(state)


@pytest.mark.parametrize(
    ("mixing", "message"),
    [
        ("source: offline", r"<config>:\d+: mixing.source: must be one of probe, online, got 'offline'"),
        ("layers: middle", r"<config>:\d+: mixing.layers: must be last, all, a MoE layer index or a list"),
        ("layers: [1, 1]", r"<config>:\d+: mixing.layers: must be a non-empty list of distinct"),
        ("layers: [a]", r"<config>:\d+: mixing.layers"),
        ("load_ema: 1.0", r"<config>:\d+: mixing.load_ema: must be in \[0, 1\)"),
        ("router_module: ' '", r"<config>:\d+: mixing.router_module: must be a module path pattern"),
        ("freeze_router: maybe", r"<config>:\d+: mixing.freeze_router: expected bool"),
    ],
)
def test_bad_routing_config_names_the_line_and_field(mixing, message):
    key, value = mixing.split(": ", 1)
    text = config_text(**{key: yaml.safe_load(value)})
    assert f"{key}: {value}" in text  # the bad value reaches the file as written here
    with pytest.raises(ConfigError, match=message):
        load_config(text=text)


def test_routing_config_values_load():
    text = config_text(source="online", layers=[0, -1])
    mixing = load_config(text=text, overrides=["--mixing.load_ema=0.5", "--mixing.count_prompt_tokens=false"]).mixing
    assert (mixing.source, mixing.layers, mixing.load_ema, mixing.count_prompt_tokens) == (
        "online",
        [0, -1],
        0.5,
        False,
    )
    assert load_config(text=text, overrides=["--mixing.layers=all"]).mixing.layers == "all"
    assert load_config(text=text, overrides=["--mixing.layers=1"]).mixing.layers == 1


@pytest.mark.parametrize("count_prompt_tokens", [True, False])
def test_probe_counts_prompt_tokens_unless_told_not_to(count_prompt_tokens):
    model = tiny_moe("olmoe", seed=6)
    probe = [[batch] for batch, _ in batches_of_three_datasets()]

    loads = probe_loads(model, probe, "last", count_prompt_tokens=count_prompt_tokens)

    for row, (batch, _) in zip(loads, batches_of_three_datasets()):
        counted = batch["attention_mask"] if count_prompt_tokens else (batch["labels"] != IGNORE_INDEX).long()
        assert row.sum() == 2 * counted.sum()


def test_online_counts_of_a_packed_batch_equal_each_example_counted_alone():
    # Packed rows mix datasets and have no attention_mask: only the per-token dataset ids attribute the routing.
    model = tiny_moe("mixtral", seed=7).eval()
    generator = torch.Generator().manual_seed(8)
    features = []
    for i, length in enumerate([9, 4, 7, 12, 5, 6]):
        ids = torch.randint(3, 256, (length,), generator=generator).numpy()
        features.append({"input_ids": ids, "labels": ids.copy(), "dataset_id": i % 3})
    packed = PackingCollator(pad_token_id=0, max_length=16)(features)
    assert packed["input_ids"].shape[0] < len(features) and "attention_mask" not in packed

    online = OnlineExpertCounts(model, 3, layers="all")
    with torch.no_grad(), online.counting(packed, None, packed["token_dataset_ids"]):
        model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False)
    counts = online.read()
    online.close()

    expected = np.zeros_like(counts)
    for f in features:
        ids = torch.as_tensor(f["input_ids"])[None]
        expected[f["dataset_id"]] += expert_counts(model, ids, torch.ones_like(ids), layer="all")[0].numpy()
    np.testing.assert_array_equal(counts, expected)
