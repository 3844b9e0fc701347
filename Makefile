# Every target creates .venv and installs the locked dependencies first when they are missing.
# The lock is requirements/*.txt (pip-compile --generate-hashes): pip installs it with
# --require-hashes, so a fresh machine needs only Python 3.11, pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --build-deps-for wheel \
	--no-emit-index-url --no-emit-find-links

.PHONY: run test lint format bench envtest flux lock clean mutate

$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/dev.txt
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## run: the service; uses the kubeconfig's cluster when reachable, else dry-run on config/examples
run: $(STAMP)
	$(BIN)/gitops-receiver serve --fallback-inventory config/examples --log-format console \
		--listen 127.0.0.1:9292 --health-listen 127.0.0.1:9440 --metrics-listen 127.0.0.1:8080

## test: the whole suite (unit, integration against a real kube-apiserver + etcd, e2e, lint)
test: $(STAMP)
	scripts/install-chromium.sh
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
	@for script in benchmarks/*.py; do echo "== $$script"; PYTHONPATH=. $(BIN)/python $$script || exit 1; done

## mutate: mutation testing (mutmut) of receiver/sources, routing and http against the unit and
## HTTP tests, then the score; slow (tens of minutes), never part of `make test`.
## MUTANTS="receiver.sources.github*" narrows it to some mutants.
mutate: $(STAMP)
	$(BIN)/mutmut run --max-children 2 $(MUTANTS) || true
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python scripts/mutation-score.py mutants/mutmut-cicd-stats.json

## envtest: build the test kube-apiserver and etcd once into ~/.cache/gitops-receiver
envtest:
	scripts/build-envtest.sh

## flux: build Flux's controllers, CLI and real CRDs once into ~/.cache/gitops-receiver/flux
flux:
	scripts/build-flux.sh

## lock: re-resolve requirements/runtime.txt and requirements/dev.txt from pyproject.toml
## (after changing a pin there; add --upgrade-package NAME to LOCK_FLAGS to move one package)
lock: $(STAMP)
	PIP_FIND_LINKS= $(BIN)/pip-compile $(LOCK_FLAGS) -o requirements/runtime.txt pyproject.toml
	PIP_FIND_LINKS= $(BIN)/pip-compile $(LOCK_FLAGS) --extra dev -c requirements/runtime.txt \
		-o requirements/dev.txt pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants
