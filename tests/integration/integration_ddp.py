"""Train through moemix.integrations.mixing_trainer with a plain Trainer, in one or several processes (torchrun),
and write the parameters each process holds: ``python integration_ddp.py OUT BATCH``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from integration_runs import model, ranged_datasets
from safetensors.torch import save_file
from transformers import Trainer, TrainingArguments

from moemix.data.mixture import MixtureCollator
from moemix.integrations import mixing_trainer

out, batch = Path(sys.argv[1]), int(sys.argv[2])
datasets = {name: d.map(lambda row: {"labels": row["input_ids"]}) for name, d in ranged_datasets().items()}
args = TrainingArguments(
    output_dir=str(out),
    max_steps=6,
    per_device_train_batch_size=batch,
    gradient_accumulation_steps=2,
    learning_rate=0.5,
    optim="sgd",
    use_cpu=True,
    report_to="none",
    save_strategy="no",
    logging_strategy="no",
    disable_tqdm=True,
    seed=0,
    dataloader_pin_memory=False,
    ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
)
trainer = mixing_trainer(
    Trainer,
    datasets,
    {"policy": "dynamic", "interval": 2},
    model=model(),
    args=args,
    data_collator=MixtureCollator(pad_token_id=1),
)
trainer.train()
params = {k: v.detach().cpu().clone().contiguous() for k, v in trainer.model.state_dict().items()}
save_file(params, str(out / f"params.rank{args.process_index}.safetensors"))
if torch.distributed.is_initialized():  # closed before exit: gloo threads left to shutdown can abort a rank
    torch.distributed.destroy_process_group()
