"""Your own accelerate loop on moemix's dynamic mixture: draw, forward, step, after_step.

    accelerate launch examples/accelerate_loop.py --out runs/loop         # an MoE from the Hub (MODEL below)
    python examples/accelerate_loop.py --out runs/loop --tiny             # a tiny random MoE, on a CPU
"""

import argparse
import json
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM, AutoTokenizer

from moemix.integrations import MixtureLoop

MODEL = "allenai/OLMoE-1B-7B-0125-Instruct"

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="runs/loop")
parser.add_argument("--tiny", action="store_true", help="a tiny random MoE and moemix's own tokenizer")
cli = parser.parse_args()

if cli.tiny:
    from moemix.data.tokenizer import train_bpe_tokenizer
    from moemix.testing import tiny_moe

    tokenizer = train_bpe_tokenizer(["1 + 2 = 3. the cat sat. def f(x): return x"], vocab_size=300)
    model = tiny_moe("mixtral", vocab_size=len(tokenizer))
else:
    tokenizer, model = AutoTokenizer.from_pretrained(MODEL), AutoModelForCausalLM.from_pretrained(MODEL)

texts = {  # tokenised rows of each dataset (input_ids and labels); use your own
    "arithmetic": [f"{a} + {b} = {a + b}." for a in range(40) for b in range(5)],
    "prose": [f"the {w} sat on the mat number {i}." for w in ("cat", "dog", "bird", "fox") for i in range(50)],
    "code": [f"def f{i}(x): return x * {i}" for i in range(200)],
}
rows = {name: [{"input_ids": ids, "labels": ids} for ids in tokenizer(lines)["input_ids"]]
        for name, lines in texts.items()}

accelerator = Accelerator(cpu=cli.tiny)
out = Path(cli.out)
mixture = MixtureLoop(rows, model, {"policy": "dynamic", "interval": 3}, batch_size=8,
                      pad_token_id=tokenizer.pad_token_id, log_path=out / "mixture.jsonl")
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3 if cli.tiny else 1e-5)
model, optimizer = accelerator.prepare(model, optimizer)
for step in range(12 if cli.tiny else 1000):
    for batch in mixture.next_step(micro_batches=2):  # drawn now, with the weights of this very step
        with mixture.counting(batch) as inputs:  # the routing of this forward counts for each token's dataset
            loss = model(**{k: v.to(accelerator.device) for k, v in inputs.items()}).loss / 2
        accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
    mixture.after_step(model)  # every `interval` steps: new weights, a line in mixture.jsonl
    if accelerator.is_main_process and (step + 1) % 6 == 0:  # save the mixture with your checkpoint
        (out / "mixture_checkpoint.json").write_text(json.dumps(mixture.state_dict()))
print("final weights:", mixture.weights)
accelerator.end_training()  # closes the process group of a multi-process launch before the interpreter exits
