# lollypops: the two commands of the README's quick start are `make demo` and
# `make test`; both install what is missing first (tests/deps.sh, Debian).
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BUILD := $(CURDIR)/build

# The Nix configuration the tests, the demo and the benchmarks bring
# themselves (tests/nix/nix-conf.sh writes it), instead of the machine's
# /etc/nix/nix.conf and root's ~/.config/nix/nix.conf, which may be missing,
# name a build users group that does not exist, or enable a binary cache.
# Exported, so it reaches go test, the demo, and every nix they start.
NIX_CONF := $(BUILD)/nix-conf
export NIX_CONF_DIR := $(NIX_CONF)
export NIX_USER_CONF_FILES := $(NIX_CONF)/nix.conf
unexport NIX_CONFIG

# nixpkgs' lib for the Nix evaluation tests: LOLLYPOPS_NIXPKGS_LIB when set,
# else the offline copy beside the checkout (../shared/nixpkgs.lib, where CI
# has it). Exported, so it reaches deps.sh, the Nix checks and go test.
LOLLYPOPS_NIXPKGS_LIB ?= $(firstword $(wildcard $(abspath $(CURDIR)/../shared/nixpkgs.lib)))
export LOLLYPOPS_NIXPKGS_LIB

.PHONY: build deps nix-conf demo test lint test-go test-nix bench bench-nix clean

# The release in nix/package.nix, and the commit, for --version.
VERSION := $(shell sed -n 's/^  version = "\(.*\)";/\1/p' nix/package.nix)+$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

build:
	cd go && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X github.com/lollypops/lollypops/go/internal/version.Version=$(VERSION)" \
		-o $(BUILD)/ ./cmd/lollypops ./cmd/lollypops-step

deps:
	@tests/deps.sh

nix-conf:
	@tests/nix/nix-conf.sh $(NIX_CONF) >/dev/null

# Three throwaway local hosts, one deploy with secrets, a summary, teardown.
demo: deps nix-conf build
	cd go && $(GO) run ./dev/demo --bin $(BUILD)

# Every test: formatting, vet, unit and golden tests (with the race
# detector), end-to-end tests on fake hosts (as root), the Nix checks.
test: deps nix-conf lint test-go test-nix

lint:
	@out=$$(cd go && gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	cd go && $(GO) vet ./...
	@# darwin deployers: the Linux-only code stays behind build tags.
	cd go && GOOS=darwin $(GO) vet ./...
	@# Shell is code, above all what runs as root on the hosts: each file
	@# says its dialect (a shebang or a shell directive).
	git ls-files -z '*.sh' | xargs -0 shellcheck

test-go: nix-conf
	cd go && $(GO) test -count=1 -race ./internal/... ./cmd/... ./dev/...
	cd go && $(GO) test -count=1 -timeout 45m ./e2e/...

# The evaluation tests need nixpkgs' lib (LOLLYPOPS_NIXPKGS_LIB, above);
# without it they skip with one line, and .ci/run fails.
test-nix: nix-conf
	tests/nix/parse.sh
	tests/nix/check-vendor-hash.sh
	tests/nix/eval.sh
	tests/nix/check-options-doc.sh

# Benchmarks: lollypops against a lower bound and the original's command
# shape on 20 fake hosts, and planning cost up to 5000 hosts; writes
# docs/benchmarks.md (about an hour; BENCH_FLAGS=--quick: 1×10 and 20×50, about six minutes).
bench: deps nix-conf build
	@command -v strace >/dev/null || { apt-get -o DPkg::Lock::Timeout=300 -qq update && apt-get -o DPkg::Lock::Timeout=300 -qq install -y strace >/dev/null; }
	cd go && $(GO) run ./dev/bench --bin $(BUILD) --out ../docs/benchmarks.md $(BENCH_FLAGS)

# The Nix side: time and memory of evaluating fleets of 1 to 1000 hosts on
# a synthetic module set shaped like NixOS's, today's inventory and the
# runner's own; writes its block of docs/benchmarks.md (which `make bench`
# keeps). Needs LOLLYPOPS_NIXPKGS_LIB, skips without it; not part of
# `make test` (half an hour or more: 1000 hosts are evaluated twice;
# BENCH_NIX_FLAGS='--fleets 1,10,100': minutes).
bench-nix: deps nix-conf build
	cd go && $(GO) run ./dev/benchnix --bin $(BUILD) --repo .. --out ../docs/benchmarks.md $(BENCH_NIX_FLAGS)

clean:
	rm -rf $(BUILD)
