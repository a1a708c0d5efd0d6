# Everything runs offline from pinned versions: Go tools from tools/go.mod, npm tools from
# tools/package-lock.json and gen/ts/package-lock.json.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
BIN := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)
GO_TEST_FLAGS ?= -race -count=1

.PHONY: all tools generate protodeps lint test test-short fuzz build run demo ts-check check-generated clean

all: generate lint test build

## tools: build the pinned Go tools into .bin and install the pinned npm packages.
tools: $(BIN)/buf tools/node_modules/.package-lock.json gen/ts/node_modules/.package-lock.json

$(BIN)/buf: tools/go.mod tools/go.sum
	GOBIN=$(BIN) go install -modfile=tools/go.mod tool
	@touch $@

tools/node_modules/.package-lock.json: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund

gen/ts/node_modules/.package-lock.json: gen/ts/package.json gen/ts/package-lock.json
	cd gen/ts && npm ci --no-audit --no-fund

protodeps: tools
	./scripts/protodeps.sh

## generate: regenerate gen/ (Go, gateway, OpenAPI, TypeScript) from api/proto.
generate: protodeps
	rm -rf gen/go gen/openapi/*.json gen/ts/src/gen
	buf generate api/proto
	go mod tidy

## lint: buf lint, go vet, staticcheck, and the TypeScript client type-check.
lint: protodeps ts-check
	buf lint
	buf format --diff --exit-code api/proto
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	staticcheck ./...

ts-check: gen/ts/node_modules/.package-lock.json
	cd gen/ts && npx tsc -p tsconfig.json --noEmit && npx tsc -p tsconfig.test.json --noEmit

## check-generated: fail when `make generate` changes anything (CI).
check-generated: generate
	@if [ -n "$$(git status --porcelain -- gen go.mod go.sum)" ]; then \
		echo "generated code is stale; run make generate and commit:"; git status --porcelain -- gen go.mod go.sum; git diff --stat -- gen; exit 1; fi

## test: every Go test, against the local Postgres and Redis, with the race detector; the
## generated TypeScript client must compile, and its live test (e2e/typescript_test.go) and the
## docs' curl/grpcurl examples (e2e/docs_examples_test.go) must run: PIPELINE_REQUIRE_TOOLS=1 makes
## a missing node, grpcurl or curl a failure instead of a skip.
test: ts-check
	PIPELINE_REQUIRE_TOOLS=1 go test $(GO_TEST_FLAGS) ./...

## fuzz: run each fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	go test ./internal/pagetoken -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	go test ./internal/content -run '^$$' -fuzz FuzzValidateDocument -fuzztime $(FUZZTIME)
	go test ./internal/chunk -run '^$$' -fuzz FuzzSplit -fuzztime $(FUZZTIME)
	go test ./internal/htmlmd -run '^$$' -fuzz FuzzConvert -fuzztime $(FUZZTIME)

## build: the one binary, into ./pipeline.
build:
	go build -o pipeline ./cmd/pipeline

## run: the whole service in one process (server, workers, embedded store) on the local
## Postgres and Redis.
run: build
	./pipeline dev

## demo: the main job end to end: `pipeline dev`, ingest the shipped corpus, search it.
demo:
	./scripts/demo.sh

# The chaos targets (fault-injection suite, chaos/).
.PHONY: chaos chaos-short

## chaos: the fault-injection suite on the real binaries, with a private Postgres cluster and
## redis-server of its own (~5,000 documents, every fault several times). Needs root.
chaos:
	go run ./chaos

## chaos-short: the same, ~1,500 documents, each fault at least once, under 5 minutes (CI).
chaos-short:
	go run ./chaos -short

# The benchmark suite against peers (bench/, its own Go module; docs/performance.md).
.PHONY: bench bench-short

bench/js/node_modules/.package-lock.json: bench/js/package.json bench/js/package-lock.json
	cd bench/js && npm ci --no-audit --no-fund

## bench: every case on the full corpus (postgresql-doc-15 must be installed), 7 alternating
## runs per subject; the table on stdout, JSON in .build/bench.json.
bench: bench/js/node_modules/.package-lock.json
	mkdir -p .build
	cd bench && go run . -v -json ../.build/bench.json

## bench-short: the harness's own tests, then every case on a smaller corpus, 3 runs (CI).
bench-short: bench/js/node_modules/.package-lock.json
	mkdir -p .build
	cd bench && go vet ./... && go test -count=1 ./... && go run . -short -json ../.build/bench-short.json

clean:
	rm -rf .bin .build pipeline tools/node_modules gen/ts/node_modules gen/ts/dist
	rm -rf web/node_modules

# The web console (web/: TypeScript sources bundled by esbuild into web/dist/, which is committed
# and embedded in the binary; docs/console.md). Its browser test is e2e/console_test.go.
.PHONY: web web-check check-web

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

tools: web/node_modules/.package-lock.json
lint: web-check
test: web-check

## web: build the console into web/dist (commit the result: the server embeds it).
web: web/node_modules/.package-lock.json
	cd web && node build.mjs

## web-check: type-check the console's sources against the generated TypeScript messages.
web-check: web/node_modules/.package-lock.json
	cd web && npx tsc -p tsconfig.json

## check-web: fail when rebuilding the console changes web/dist (CI).
check-web: web
	@if [ -n "$$(git status --porcelain -- web/dist)" ]; then \
		echo "web/dist is stale; run make web and commit:"; git status --porcelain -- web/dist; exit 1; fi
