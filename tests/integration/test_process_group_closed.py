"""`moemix train` destroys the default process group before its process exits, after a run and after an error.

Left to the interpreter's shutdown, gloo's worker threads can abort a rank whose run succeeded (SIGABRT,
"terminate called without an active exception"), which fails a torchrun launch at random on a loaded machine.
A fresh process starts a one-rank gloo group as torchrun's ranks have one, then runs the CLI's own entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from moemix.testing import tiny_run_config

SCRIPT = """
import sys
import torch.distributed as dist
from moemix.cli import main

store, config, out = sys.argv[1:4]
for n, name in enumerate(("broken", "run")):
    dist.init_process_group("gloo", init_method=f"file://{store}{n}", rank=0, world_size=1)
    status = main(["train", config.replace("run", name), f"--output_dir={out}-{name}"])
    print("status", name, status, dist.is_initialized())
"""


def test_train_leaves_no_process_group(tmp_path):
    run = tiny_run_config(("dialogue", "math"), 24, mixing={"interval": 2}, training={"max_steps": 4})
    (tmp_path / "run.yaml").write_text(run)
    broken = tmp_path / "broken.jsonl"
    rows = [json.dumps({"instruction": f"question {i}", "output": f"answer {i}"}) for i in range(6)]
    broken.write_text("\n".join([*rows[:2], '{"instruction": "cut", "output": ', *rows[2:]]) + "\n")
    # Read after the process group exists (inside the run), unlike a config error, which stops before it.
    (tmp_path / "broken.yaml").write_text(
        tiny_run_config(("dialogue", {"name": "own", "path": str(broken), "dev_size": 2}), 24)
    )
    command = [sys.executable, "-c", SCRIPT, str(tmp_path / "store"), str(tmp_path / "run.yaml"), str(tmp_path / "o")]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("status ")]
    assert lines == [["broken", "2", "False"], ["run", "0", "False"]], proc.stdout + proc.stderr[-2000:]
    assert f"{broken}:3: not valid JSON" in proc.stderr
