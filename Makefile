# Strata — build, test and tooling entry points.
GO       ?= go
TOOLS    ?= $(HOME)/.cache/strata-tools
BIN      := bin/strata
PKGS     := ./...
# Test timeout per package; the suite runs packages two at a time on 2 cores.
TEST_TIMEOUT ?= 20m
export STRATA_TOOLS := $(TOOLS)

.PHONY: all build test unit lint vet fmt tools proto bench microbench clean

all: build

build: ## build bin/strata
	$(GO) build -o $(BIN) ./cmd/strata

tools: ## install the servers the tests talk to (MinIO, fake-gcs-server, Azurite, Debian packages)
	bash scripts/install-tools.sh

test: tools ## the README's test command: install tools, vet, run every test against real servers
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -p 2 -timeout $(TEST_TIMEOUT) $(PKGS)

unit: ## tests that need no external server
	STRATA_ALLOW_SKIP=1 $(GO) test -count=1 -short $(PKGS)

lint: vet ## gofmt check + go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

proto: ## regenerate rpcpb from strata.proto (needs protoc; installs the Go plugins)
	GOBIN=$(TOOLS)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	GOBIN=$(TOOLS)/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	cd rpcpb && PATH=$(TOOLS)/bin:$$PATH $(GO) generate .

bench: ## side-by-side suite: Strata vs rclone, s3fs, MinIO, loopback, disk (root; ~25 min); writes docs/benchmarks.md, docs/bench/
	bash scripts/install-tools.sh bench
	$(GO) build -o bin/bench ./tests/bench
	./bin/bench $(BENCH_FLAGS)

microbench: tools ## go benchmarks of the tier and cluster packages (figures in docs/microbenchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./tier/ ./cluster/

clean:
	rm -rf bin
