# Two commands matter: `make demo` (the whole service on this machine) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
ARTIFACTS ?= artifacts
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install lint test demo train retrain bench browser clean

install: $(VENV)/.installed node_modules/.installed

# Reinstalls only when a requirements file changed.
$(VENV)/.installed: requirements/*.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
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

test: lint browser
	$(PY) -m pytest

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
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
