# agent-pdp — every target installs what it needs and runs what it depends on.
# Fresh machine: `make run` to serve the example policies, `make test` to check everything.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

OPA_VERSION      ?= v1.22.2
OPA_FALLBACKS    ?= v1.22.1 v1.22.0 v1.21.1 v1.21.0
TOOLS            := $(CURDIR)/.tools/bin
OPA              := $(TOOLS)/opa
OPA_CACHE        := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/agent-pdp/opa-$(OPA_VERSION)
CONFIG           ?= agent-pdp.dev.yaml
NODE_STAMP       := node_modules/.install-stamp

export PATH := $(TOOLS):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: help setup tools browser bundle bundle-check build run run-authzen test test-rego test-ts typecheck bench demo fuzz clean

help:
	@echo "make run    start the PDP on the dev config with the example policies (http://127.0.0.1:8181)"
	@echo "make test   opa fmt/check/test, bundle freshness, type check, vitest"
	@echo "make run-authzen   the same PDP with the AuthZEN certification pack (docs/doors.md)"
	@echo "make setup | browser | bundle | build | bench | demo | fuzz | clean"

setup: $(NODE_STAMP) tools

$(NODE_STAMP): package.json package-lock.json
	@command -v node >/dev/null || { echo "agent-pdp needs Node.js 20 or newer on PATH (none found)"; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

# The OPA CLI, built from the Go module proxy once per machine and cached outside the clone.
tools: $(OPA)

$(OPA):
	@mkdir -p $(TOOLS)
	@if [ ! -x "$(OPA_CACHE)/opa" ]; then \
	  command -v go >/dev/null || { echo "agent-pdp needs Go (1.22+) to build the OPA CLI $(OPA_VERSION): install Go, or put an opa binary at $(OPA)"; exit 1; }; \
	  mkdir -p "$(OPA_CACHE)"; \
	  for v in $(OPA_VERSION) $(OPA_FALLBACKS); do \
	    echo "building opa $$v with go install (first time on this machine takes a few minutes)"; \
	    if GOBIN="$(OPA_CACHE)" go install github.com/open-policy-agent/opa@$$v; then break; fi; \
	  done; \
	fi
	@cp "$(OPA_CACHE)/opa" $(OPA)
	@$(OPA) version | sed -n 1p  # not head: with pipefail, SIGPIPE to opa would fail the build

# Debian's headless Chromium for the web console's browser tests (test/support/browser.ts), installed with apt-get
# (as root or with sudo -n) when missing; quiet when it is there. Only test-ts needs it: `make run` never installs it.
browser:
	@scripts/chromium.sh install

# With PACKS="dir1 dir2" BUNDLE_OUT=path: a bundle of rego/ and those Rego packs (docs/bundles.md, "Rego packs").
bundle: tools $(NODE_STAMP)
	scripts/build-bundle.sh $(foreach pack,$(PACKS),--pack $(pack)) $(if $(BUNDLE_OUT),--output $(BUNDLE_OUT))

bundle-check: tools $(NODE_STAMP)
	scripts/build-bundle.sh --check

# Node only: the WASM bundle is committed (make test checks it is fresh), so serving needs no Go and no OPA.
build: $(NODE_STAMP)
	rm -rf dist  # a deleted source must not live on in dist/ (and in a packed package)
	tsc -p tsconfig.build.json
	@chmod +x dist/cli/main.js
	tsc -p console-ui/tsconfig.json  # the web console's browser modules (console-ui/README.md)
	cp console-ui/index.html console-ui/console.css console-ui/favicon.svg dist/console-ui/

# How a serving process is started: node with the server's V8 flags (src/workers/process-flags.ts says why, and why
# the bin's shebang cannot carry them).
SERVER_NODE := node --no-memory-reducer

run: build
	$(SERVER_NODE) dist/cli/main.js serve --config $(CONFIG)

# The PDP with the AuthZEN certification pack built in and subject type `user` routed to it (docs/doors.md): what an
# AuthZEN harness runs against (dev keys; the pep key is dev-pep-key). Builds the pack bundle, so it needs the OPA CLI.
AUTHZEN_BUNDLE := .build/authzen-bundle.tar.gz
run-authzen: build tools
	scripts/build-bundle.sh --pack examples/packs/authzen-certification --output $(AUTHZEN_BUNDLE)
	$(SERVER_NODE) dist/cli/main.js serve --config agent-pdp.authzen.yaml

# With the bundle's capabilities (the builtins the opa-wasm SDK provides): a rule using time.now_ns, http.send or
# another builtin the WASM bundle lacks fails here, as it fails `make bundle`. --var-values shows a failure's values.
test-rego: tools
	$(OPA) fmt --list --fail rego/
	$(OPA) check --strict --capabilities opa-bundle/capabilities.json rego/
	$(OPA) test --capabilities opa-bundle/capabilities.json --var-values rego/
	$(OPA) fmt --list --fail examples/packs/
	$(OPA) check --strict --capabilities opa-bundle/capabilities.json examples/packs/
	$(OPA) test --capabilities opa-bundle/capabilities.json --var-values --ignore pack.yaml examples/packs/

typecheck: $(NODE_STAMP)
	tsc -p tsconfig.json
	tsc -p bench/tsconfig.json --noEmit
	tsc -p console-ui/tsconfig.json --noEmit

test-ts: $(NODE_STAMP) tools browser
	vitest run

test: setup test-rego bundle-check typecheck build test-ts
	node dist/cli/main.js policy test policies  # the shipped policies against their tests (policies/.tests)

# The three PEP examples against a PDP the demo starts itself (free loopback port, temp data dir, dev keys).
demo: build
	rm -rf dist-examples
	tsc -p examples/tsconfig.json
	node dist-examples/examples/demo.js

# The WASM-vs-OPA oracle and the reference model of docs/policy-semantics.md with 10x the cases of `make test`;
# ORACLE_SEED=<n> / SEMANTICS_SEED=<n> replay a failure.
fuzz: setup bundle-check
	ORACLE_SETS=$${ORACLE_SETS:-250} ORACLE_REQUESTS=$${ORACLE_REQUESTS:-40} vitest run test/oracle
	SEMANTICS_SETS=$${SEMANTICS_SETS:-400} vitest run test/semantics/reference-model.test.ts

# Ours against OPA on this machine, a few minutes: bench/results/{results.json,report.md,latency.svg} (gitignored).
# BENCH_ARGS=--quick for a smoke run; BENCH_ARGS=--profile profiles our server under saturation (profile.md).
# Take final figures on an idle machine: the report says when other processes used the CPU meanwhile.
VEGETA_VERSION   ?= v12.13.0
VEGETA           := $(TOOLS)/vegeta
VEGETA_CACHE     := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/agent-pdp/vegeta-$(VEGETA_VERSION)

bench: build tools
	@mkdir -p $(TOOLS)
	@if [ ! -x "$(VEGETA)" ]; then \
	  if [ ! -x "$(VEGETA_CACHE)/vegeta" ]; then \
	    command -v go >/dev/null || { echo "make bench needs Go to build vegeta $(VEGETA_VERSION): install Go, or put a vegeta binary at $(VEGETA)"; exit 1; }; \
	    echo "building vegeta $(VEGETA_VERSION) with go install (once per machine)"; \
	    mkdir -p "$(VEGETA_CACHE)"; \
	    GOBIN="$(VEGETA_CACHE)" go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION); \
	  fi; \
	  cp "$(VEGETA_CACHE)/vegeta" $(VEGETA); \
	fi
	@command -v taskset >/dev/null || echo "taskset (util-linux) not found: the bench runs unpinned and says so"
	tsc -p bench/tsconfig.json
	@ln -sfn ../../schemas .build/bench/schemas
	@uptime
	@pin=""; if command -v taskset >/dev/null && [ "$$(nproc)" -ge 2 ]; then pin="taskset -c 1"; fi; \
	  $$pin node .build/bench/bench/run-bench.js $(BENCH_ARGS)

clean:
	rm -rf dist dist-examples .tools data
