"""TRL's SFTTrainer through moemix.integrations: every token counted for its own dataset, packed or not, and a
resumed run equal to an uninterrupted one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from integration_runs import RANGES, dataset_of, model, ranged_datasets, tokenizer

from moemix.files import read_jsonl
from moemix.integrations import mixing_trainer
from moemix.routing import capture_layers
from moemix.testing import StopAtStep

trl = pytest.importorskip("trl")


def sft_trainer(tmp_path, out, packing, max_steps=8, callbacks=(), **args):
    config = trl.SFTConfig(
        **{
            "output_dir": str(out),
            "max_steps": max_steps,
            "per_device_train_batch_size": 4,
            "learning_rate": 3e-3,
            "lr_scheduler_type": "constant",
            "report_to": "none",
            "logging_steps": 1,
            "save_strategy": "no",
            "max_length": 64,
            "packing": packing,
            "use_cpu": True,
            "dataloader_pin_memory": False,
            "seed": 0,
            "disable_tqdm": True,
            **args,
        }
    )
    return mixing_trainer(
        trl.SFTTrainer,
        ranged_datasets(),
        {"policy": "dynamic", "interval": 2},
        model=model(),
        args=config,
        processing_class=tokenizer(tmp_path / "tok"),
        callbacks=list(callbacks),
    )


class Forwards:
    """What the last MoE layer received in every training forward, and the tokens of that forward."""

    def __init__(self, trainer):
        self.inputs, self.indices = [], []
        trainer.model.register_forward_pre_hook(self._record, with_kwargs=True)
        self._capture = capture_layers(trainer.model, "last")
        (self.capture,) = self._capture.__enter__()

    def _record(self, module, args, kwargs):
        if module.training:
            self.inputs.append(kwargs["input_ids"].detach().clone())

    def known_counts(self, top_k: int, experts: int) -> list[np.ndarray]:
        """Per forward, the (datasets, experts) counts that the token ranges say are right."""
        out = []
        for ids, chosen in zip(self.inputs, self.capture.take()):
            groups = np.array([dataset_of(int(t)) for t in ids.reshape(-1)])
            counts = np.zeros((len(RANGES), experts), dtype=np.int64)
            for g, row in zip(groups, chosen.numpy()):
                if g >= 0:
                    np.add.at(counts[g], row[:top_k], 1)
            out.append(counts)
        return out


@pytest.mark.parametrize("packing", [False, True], ids=["unpacked", "packed"])
def test_every_token_counts_for_its_own_dataset(tmp_path, packing):
    out = tmp_path / "run"
    trainer = sft_trainer(tmp_path, out, packing)
    forwards = Forwards(trainer)
    if packing:  # the rows really are packed: several examples per row, never two datasets in one row
        rows = trainer.train_dataset
        assert len(rows) < 90 and max(len(s) for s in rows["seq_lengths"]) > 1
        for row in rows:
            assert {dataset_of(t) for t in row["input_ids"]} == {row["moemix_dataset"]}

    trainer.train()

    config = trainer.model.config
    known = forwards.known_counts(config.num_experts_per_tok, config.num_experts)
    log = read_jsonl(out / "mixture.jsonl")
    assert [r["step"] for r in log] == [2, 4, 6, 8] and len(known) == 8
    previous = None
    for i, record in enumerate(log):  # each update read exactly the counts of its window's forwards
        window = known[2 * i] + known[2 * i + 1]
        loads = np.array(list(record["loads"].values()))
        drawn = window.sum(axis=1) > 0  # a dataset not drawn in the window keeps its previous load
        # (the same counts; the log normalises twice, hence a rounding's tolerance)
        assert np.allclose(loads[drawn], window[drawn] / window[drawn].sum(axis=1, keepdims=True), rtol=0, atol=1e-12)
        assert record.get("carried", []) == [name for name, d in zip(RANGES, drawn) if not d]
        if not drawn.all():
            assert np.array_equal(loads[~drawn], previous[~drawn])
        previous = loads
    tokens = [sum(int(((ids >= lo) & (ids < hi)).sum()) for ids in forwards.inputs) for lo, hi in RANGES.values()]
    assert trainer.tokens_seen.tolist() == tokens
    assert max(abs(w - 1 / 3) for w in log[-1]["weights"].values()) > 0.01


def one_pass_counts(trainer) -> np.ndarray:
    """Every training row once, collated as the trainer's feed collates, counted by the trainer's online counts."""
    rows, collate, online = trainer.moemix.feed.dataset, trainer.moemix.feed.collator, trainer.moemix.online
    with torch.no_grad():
        for start in range(0, len(rows), 4):
            batch = collate([rows[i] for i in range(start, min(start + 4, len(rows)))])
            inputs = {k: v for k, v in batch.items() if k not in ("dataset_ids", "token_dataset_ids")}
            with online.counting(inputs, batch["dataset_ids"], batch["token_dataset_ids"]):
                trainer.model(**inputs, use_cache=False)
    return online.read()


def test_packed_counts_equal_unpacked_counts_over_the_same_examples(tmp_path):
    packed = one_pass_counts(sft_trainer(tmp_path, tmp_path / "packed", packing=True))
    unpacked = one_pass_counts(sft_trainer(tmp_path, tmp_path / "unpacked", packing=False))

    assert np.array_equal(packed, unpacked)
    top_k = model().config.num_experts_per_tok
    tokens = [sum(len(ids) for ids in d["input_ids"]) for d in ranged_datasets().values()]
    assert packed.sum(axis=1).tolist() == [n * top_k for n in tokens]


def test_a_resumed_packed_run_equals_an_uninterrupted_one(tmp_path):
    saving = {"save_strategy": "steps", "save_steps": 3}
    whole = sft_trainer(tmp_path, tmp_path / "whole", packing=True, max_steps=9, **saving)
    whole.train()
    parts = tmp_path / "parts"
    sft_trainer(tmp_path, parts, packing=True, max_steps=9, callbacks=[StopAtStep(5)], **saving).train()
    assert [r["step"] for r in read_jsonl(parts / "mixture.jsonl")] == [2, 4]  # stopped after the update at 4
    assert (parts / "checkpoint-3" / "moemix_state.json").is_file()

    # checkpoint-3 is mid-window (updates at 2, 4): the online counts of step 3 come back with it
    resumed = sft_trainer(tmp_path, parts, packing=True, max_steps=9, **saving)
    resumed.train(resume_from_checkpoint=str(parts / "checkpoint-3"))

    assert (tmp_path / "whole" / "mixture.jsonl").read_bytes() == (parts / "mixture.jsonl").read_bytes()
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    final = json.loads((parts / "mixture_state.json").read_text())
    assert final["draws"] == json.loads((tmp_path / "whole" / "mixture_state.json").read_text())["draws"]
    assert sum(final["draws"].values()) == 9 * 4
