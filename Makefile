# The one task runner. `.ci/run` calls `make test`, exactly what the README tells people to run.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
PYTHON ?= python3

.PHONY: test deps lint deny unit crds-check fuzz-build run crds

## test: everything CI runs, from a fresh clone
test: deps lint deny unit crds-check fuzz-build

## deps: tools the tests need that are not part of the Rust build (idempotent)
deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt
	command -v cargo-fuzz >/dev/null || $(CARGO) install -q --locked cargo-fuzz@0.13.1
	command -v cargo-deny >/dev/null || $(CARGO) install -q --locked cargo-deny@0.20.2

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy -q --workspace --all-targets -- -D warnings

## deny: one TLS/crypto stack, allowed licenses, crates.io only (advisories need a network database)
deny:
	$(CARGO) deny check bans licenses sources

unit:
	$(CARGO) test -q --workspace

## crds-check: the committed CRDs pass Kubernetes' own schema (a validator nobody here wrote)
crds-check:
	$(PYTHON) -m kubernetes_validate --strict --quiet deploy/crds/istio-crds.yaml

## fuzz-build: the fuzz targets build (stable toolchain, so without sanitizers)
fuzz-build:
	cd crds/fuzz && $(CARGO) fuzz build -s none --dev
	cd authz/fuzz && $(CARGO) fuzz build -s none --dev

## crds: regenerate deploy/crds from the types
crds:
	$(CARGO) run -q -- crds > deploy/crds/istio-crds.yaml

## run: validate and convert the book's chapter 9 examples
run:
	$(CARGO) run -q -- validate crds/tests/data/seeds/book-ch9-01-meshpolicy-strict.yaml crds/tests/data/seeds/book-ch9-0[4-8]*.yaml
	$(CARGO) run -q -- convert crds/tests/data/seeds/book-ch9-01-meshpolicy-strict.yaml crds/tests/data/seeds/book-ch9-0[4-8]*.yaml
