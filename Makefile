GO ?= go
BIN := bin/checkin-sync
STATICCHECK_VERSION := v0.8.2

.PHONY: build test lint demo bench bench-memory

build:
	$(GO) build -o $(BIN) ./cmd/checkin-sync

test:
	$(GO) vet ./...
	$(GO) test -race -timeout 15m ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

demo: build
	./$(BIN) demo

# Microbenchmarks of the per-record path, then end-to-end benchmarks of
# the built tool against the fakes in a second process, under every
# documented limit × 10; not part of `make test`.
BENCH_BIN := bin/checkin-sync-bench

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./mapping/ ./store/
	$(GO) build -o $(BENCH_BIN) ./cmd/checkin-sync-bench
	./$(BENCH_BIN) -tool $(BIN) $(BENCH_FLAGS)

bench-memory: build
	$(GO) build -o $(BENCH_BIN) ./cmd/checkin-sync-bench
	./$(BENCH_BIN) -tool $(BIN) -memory $(BENCH_FLAGS)
