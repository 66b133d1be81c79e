# Two commands matter: `make demo` (the whole service on this machine) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
ARTIFACTS ?= artifacts
# The handler and the model server are tested again on the Python they run on in AWS: the serving
# image's (serving/Dockerfile's FROM, the one place it is written), which the Lambda runtime
# matches (infra/api.py; a test checks). pyenv's interpreter first, then one on PATH.
RUNTIME_PYTHON_VERSION := $(shell sed -n 's/^FROM python:\([0-9]*\.[0-9]*\)-slim.*/\1/p' serving/Dockerfile)
RUNTIME_PYTHON ?= $(firstword $(lastword $(wildcard $(HOME)/.pyenv/versions/$(RUNTIME_PYTHON_VERSION).*/bin/python$(RUNTIME_PYTHON_VERSION))) $(shell command -v python$(RUNTIME_PYTHON_VERSION)))
RUNTIME_VENV := .venv-py$(RUNTIME_PYTHON_VERSION)
RUNTIME_PY := $(RUNTIME_VENV)/bin/python
RUNTIME_TESTS := tests/lambda_fn tests/serving tests/sentiment
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install lint test demo train retrain bench browser clean

# The runtime's virtualenv too when its Python is here; without it `make demo` still runs (the
# function on this Python, the local stack says so) and `make test` stops, naming what to install.
install: $(VENV)/.installed node_modules/.installed
	@if [ -n "$(RUNTIME_PYTHON)" ]; then $(MAKE) --no-print-directory $(RUNTIME_VENV)/.installed; \
	else echo "note: no Python $(RUNTIME_PYTHON_VERSION) (the Lambda runtime's and the serving image's): make demo runs the" \
	          "function on $$($(PY) -c 'import platform; print(platform.python_version())'); make test needs $(RUNTIME_PYTHON_VERSION)"; fi

# Reinstalls only when a requirements file changed.
$(VENV)/.installed: requirements/*.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

$(RUNTIME_VENV)/.installed: requirements/*.txt
	@[ -n "$(RUNTIME_PYTHON)" ] && $(RUNTIME_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(RUNTIME_PYTHON_VERSION)".split("."))))' \
	  || { echo "error: no Python $(RUNTIME_PYTHON_VERSION) found; it is the Python of the Lambda runtime and the serving image," \
	            "which make test runs their tests on. Install it (pyenv install $(RUNTIME_PYTHON_VERSION)) or name it:" \
	            "make RUNTIME_PYTHON=/path/to/python$(RUNTIME_PYTHON_VERSION) ..."; exit 1; }
	test -x $(RUNTIME_PY) || $(RUNTIME_PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_PY) -m pip install --quiet --upgrade pip
	$(RUNTIME_PY) -m pip install --quiet -r requirements/runtime.txt
	touch $@

# The pinned CDK CLI (package.json), for `npx cdk synth` / `npx cdk deploy`.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will be skipped"; }

# Lint and type check the product packages (configured in pyproject.toml); `make test` runs it first.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint browser $(RUNTIME_VENV)/.installed
	$(PY) -m pytest
	@echo "The handler and the model server again, on Python $(RUNTIME_PYTHON_VERSION) as in AWS:"
	$(RUNTIME_PY) -m pytest $(RUNTIME_TESTS)

# Train once: skipped while $(ARTIFACTS)/ holds every file `cdk deploy` uploads; `make retrain` forces it.
# The file names come from their one definition, sentiment/artifacts.py: the metrics file, then DEPLOYED_FILES.
ARTIFACT_NAMES := from sentiment.artifacts import DEPLOYED_FILES, METRICS_FILE; print(METRICS_FILE, *DEPLOYED_FILES)
train: install
	@set -- $$($(PY) -c '$(ARTIFACT_NAMES)') && [ $$# -gt 1 ] || exit 1; metrics=$$1; shift; \
	if [ -z "$$(for f in "$$@"; do [ -f $(ARTIFACTS)/$$f ] || echo missing; done)" ]; then \
	  echo "$(ARTIFACTS)/ already holds a model ($$(grep -o '"model_version": *"[^"]*"' $(ARTIFACTS)/$$metrics)); make retrain to train again"; \
	else $(PY) -m training --out $(ARTIFACTS); fi

retrain: install
	$(PY) -m training --out $(ARTIFACTS)

# The local stack runs the synthesized template: synthesize it offline with the pinned CLI, then run it.
demo: train
	npx --no-install cdk synth --quiet --no-notices -c model_dir=$(ARTIFACTS) -o cdk.out
	$(PY) -m local_stack --template cdk.out/ServerlessSentiment.template.json --port $(PORT)

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) node_modules cdk.out .pytest_cache
