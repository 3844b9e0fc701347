# Every target creates .venv and installs the pinned dependencies first when they are missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format bench envtest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the service; uses the kubeconfig's cluster when reachable, else dry-run on config/examples
run: $(STAMP)
	$(BIN)/gitops-receiver serve --fallback-inventory config/examples --log-format console \
		--listen 127.0.0.1:9292 --health-listen 127.0.0.1:9440 --metrics-listen 127.0.0.1:8080

## test: the whole suite (unit, integration against a real kube-apiserver + etcd, e2e, lint)
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check receiver tests benchmarks
	$(BIN)/ruff format --check receiver tests benchmarks
	$(BIN)/mypy receiver

format: $(STAMP)
	$(BIN)/ruff format receiver tests benchmarks
	$(BIN)/ruff check --fix receiver tests benchmarks

## bench: the benchmark scripts (they print figures; they are not tests)
bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## envtest: build the test kube-apiserver and etcd once into ~/.cache/gitops-receiver
envtest:
	scripts/build-envtest.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
