GO ?= go
BIN := bin/checkin-sync
STATICCHECK_VERSION := v0.8.2

.PHONY: build test lint demo

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
