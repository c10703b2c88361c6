# Skiff — build, run and test. `make run` and `make test` do all the set-up they need on a fresh
# Debian 12 machine (see scripts/setup.sh).
SHELL := /bin/bash
GO ?= go
export PATH := $(HOME)/go/bin:/usr/local/go/bin:$(PATH)
BUILD := _build
ARCHES := amd64 arm64

.PHONY: setup run test agent kernel darwincheck bench lint build

setup:
	bash scripts/setup.sh

# Static guest agents, embedded into the host binaries (backend/vm/agentbin).
agent:
	@for a in $(ARCHES); do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags='-s -w' \
	    -o backend/vm/agentbin/skiff-agent-$$a ./cmd/skiff-agent || exit 1; \
	done

# Kernel bundles from Debian's linux-image-cloud-<arch> packages into $(BUILD)/kernel/<arch>.
kernel:
	bash scripts/kernel.sh $(BUILD)/kernel

lint:
	$(GO) vet ./...
	staticcheck ./...
