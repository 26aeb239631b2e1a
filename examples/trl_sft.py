"""TRL's SFTTrainer, packing on, on moemix's dynamic mixture of three chat datasets.

    python examples/trl_sft.py --out runs/trl_sft           # an MoE from the Hub (MODEL below)
    python examples/trl_sft.py --out runs/trl_sft --tiny    # a tiny random MoE, in seconds on a CPU
"""

import argparse
import random

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from moemix.integrations import mixing_trainer

MODEL = "Qwen/Qwen1.5-MoE-A2.7B-Chat"

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="runs/trl_sft")
parser.add_argument("--tiny", action="store_true", help="a tiny random MoE and moemix's own tokenizer")
cli = parser.parse_args()

# Three small chat tasks; use your own datasets (load_dataset(...)) with a "messages" column instead.
rng = random.Random(0)
tasks = {
    "sums": lambda a, b: (f"What is {a} + {b}?", str(a + b)),
    "reverse": lambda a, b: (f"Reverse the word {'abcdefghij'[a % 10:]}", "abcdefghij"[a % 10:][::-1]),
    "shout": lambda a, b: (f"Shout: hello number {b}", f"HELLO NUMBER {b}!"),
}
datasets = {
    name: Dataset.from_list([
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in (task(rng.randrange(100), rng.randrange(100)) for _ in range(200))
    ])
    for name, task in tasks.items()
}

if cli.tiny:
    from moemix.data.tokenizer import train_bpe_tokenizer
    from moemix.testing import tiny_moe

    tokenizer = train_bpe_tokenizer(["What is 12 + 30? 42. Reverse the word; HELLO NUMBER 7!"], vocab_size=300)
    model = tiny_moe("qwen2_moe", vocab_size=len(tokenizer))
else:
    tokenizer, model = AutoTokenizer.from_pretrained(MODEL), AutoModelForCausalLM.from_pretrained(MODEL)

args = SFTConfig(
    output_dir=cli.out, max_steps=12 if cli.tiny else 1000, per_device_train_batch_size=4, packing=True,
    max_length=256, learning_rate=3e-3 if cli.tiny else 1e-5, bf16=not cli.tiny, logging_steps=5, report_to="none",
)
# Each dataset is prepared (and packed) apart: a packed row never mixes datasets, and every token of it is
# counted for its own dataset.
trainer = mixing_trainer(
    SFTTrainer, datasets, {"policy": "dynamic", "interval": 3 if cli.tiny else 50},
    model=model, args=args, processing_class=tokenizer,
)
trainer.train()  # writes OUT/mixture.jsonl; checkpoints carry the mixture (resume is exact)
print("final weights:", trainer.moemix.final_state()["weights"])
