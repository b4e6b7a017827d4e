# keytrail: make test runs everything CI runs.
export GOTOOLCHAIN := local
GO ?= go

.PHONY: test vet build verify-offline-build fuzz bench golden demo clean

test: vet verify-offline-build
	$(GO) test -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above are not formatted"; exit 1; }
	$(GO) vet ./...

# The auditor's verifier must build without cgo.
verify-offline-build:
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/keytrail-verify

build:
	$(GO) build -o bin/ ./cmd/...

# Each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1x $$pkg || exit 1; \
	  done; \
	done

# The numbers of docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench 'VerifyBundle|Floor' -benchtime 10x -benchmem ./verify/
	$(GO) test -run '^$$' -bench . -benchtime 5x ./ledger/posix/
	$(GO) test -run '^$$' -bench . -benchtime 300x -benchmem ./attest/tpm ./attest/pkcs11 ./attest/marvell ./attest/luna
	$(GO) test -run '^$$' -bench 'VerifyBundleHardware' -benchtime 20x -benchmem ./verify/

# keytrail serve under load: raw ledger appends, batched and single-entry submissions (docs/benchmarks.md).
.PHONY: bench-serve
bench-serve:
	$(GO) run ./cmd/internal/loadgen

golden:
	$(GO) run ./testdata/golden/gen.go

demo:
	$(GO) run ./cmd/keytrail demo --dir ./demo

clean:
	rm -rf bin demo
