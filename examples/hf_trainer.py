"""A plain transformers Trainer on moemix's dynamic mixture of three datasets.

    python examples/hf_trainer.py --out runs/hf_trainer           # an MoE from the Hub (MODEL below)
    python examples/hf_trainer.py --out runs/hf_trainer --tiny    # a tiny random MoE, in seconds on a CPU
"""

import argparse

from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

from moemix.config import DatasetConfig
from moemix.integrations import mixing_trainer

MODEL = "allenai/OLMoE-1B-7B-0125-Instruct"

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="runs/hf_trainer")
parser.add_argument("--tiny", action="store_true", help="a tiny random MoE and moemix's own tokenizer")
cli = parser.parse_args()

if cli.tiny:
    from moemix.data.tokenizer import train_bpe_tokenizer
    from moemix.testing import tiny_moe

    tokenizer = train_bpe_tokenizer(["What is 12 + 30? It is 42.", "def add(a, b): return a + b"], vocab_size=300)
    model = tiny_moe("olmoe", vocab_size=len(tokenizer))
else:
    tokenizer, model = AutoTokenizer.from_pretrained(MODEL), AutoModelForCausalLM.from_pretrained(MODEL)

# Any moemix dataset config works here (files, folders, hf:owner/name); these three ship with moemix.
datasets = {
    name: DatasetConfig(name=name, path=f"builtin:{name}", max_examples=32 if cli.tiny else None)
    for name in ("dialogue", "math", "code")
}
args = TrainingArguments(
    output_dir=cli.out, max_steps=12 if cli.tiny else 1000, per_device_train_batch_size=4 if cli.tiny else 8,
    learning_rate=3e-3 if cli.tiny else 1e-5, logging_steps=5, save_steps=500, report_to="none",
)
trainer = mixing_trainer(
    Trainer, datasets, {"policy": "dynamic", "interval": 3 if cli.tiny else 50, "eta": 10.0},
    model=model, args=args, processing_class=tokenizer, max_length=384 if cli.tiny else 2048,
)
trainer.train()  # writes OUT/mixture.jsonl; each checkpoint-N carries the mixture (resume is exact)
print("final weights:", trainer.moemix.final_state()["weights"])
