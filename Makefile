# Skiff — build, run and test. `make run` and `make test` do all the set-up they need on a fresh
# Debian 12 machine (scripts/setup.sh is idempotent and quick when everything is present).
SHELL := /bin/bash
GO ?= go
export PATH := $(HOME)/go/bin:/usr/local/go/bin:$(PATH)
BUILD := _build
ARCHES := amd64 arm64
# Where `make kernel` puts the kernel bundles; the engine finds them through SKIFF_KERNEL_DIR.
export SKIFF_KERNEL_DIR ?= $(CURDIR)/$(BUILD)/kernel

.PHONY: setup run test test-go test-fuzz build gui agent kernel kernel-debian frontend tsgen darwincheck bench lint clean stress

setup:
	bash scripts/setup.sh

# Static guest agents, embedded into the host binaries (backend/vm/agentbin).
agent:
	@for a in $(ARCHES); do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags='-s -w' \
	    -o backend/vm/agentbin/skiff-agent-$$a ./cmd/skiff-agent || exit 1; \
	done

# The kernel bundles $(BUILD)/kernel/<arch> the engine and every VM test boot. By default Skiff's own
# guest kernel (kernel/*.config on Debian's linux-source-6.1, scripts/kernel-build.sh), built once and
# cached outside the checkout in ~/.cache/skiff/kernel-build, for the arches of SKIFF_KERNEL_ARCHES;
# an arch not in it gets Debian's cloud kernel. SKIFF_KERNEL_FLAVOR=debian: Debian's cloud kernel
# (scripts/kernel.sh) for every arch, the fallback while Skiff's proves itself.
# arm64 stays on Debian's until its Skiff kernel (which boots the agent under QEMU virt) has been tried on vz:
# SKIFF_KERNEL_ARCHES="amd64 arm64" builds both.
SKIFF_KERNEL_FLAVOR ?= skiff
SKIFF_KERNEL_ARCHES ?= amd64
kernel:
ifeq ($(SKIFF_KERNEL_FLAVOR),debian)
	bash scripts/kernel.sh $(BUILD)/kernel
else ifeq ($(SKIFF_KERNEL_FLAVOR),skiff)
	$(if $(strip $(SKIFF_KERNEL_ARCHES)),bash scripts/kernel-build.sh $(BUILD)/kernel $(SKIFF_KERNEL_ARCHES))
	$(if $(filter-out $(SKIFF_KERNEL_ARCHES),$(ARCHES)),bash scripts/kernel.sh $(BUILD)/kernel $(filter-out $(SKIFF_KERNEL_ARCHES),$(ARCHES)))
else
	$(error SKIFF_KERNEL_FLAVOR=$(SKIFF_KERNEL_FLAVOR): want skiff (the default) or debian)
endif

# Debian's cloud kernel bundles into $(BUILD)/kernel-debian/<arch>, beside Skiff's: boot them with
# SKIFF_KERNEL_DIR=$(CURDIR)/$(BUILD)/kernel-debian; `make bench` compares both kernels.
kernel-debian:
	bash scripts/kernel.sh $(BUILD)/kernel-debian

# Publishes the bundle $(BUILD)/kernel/$(ARCH) (default: the host's arch) as an OCI artifact:
# `make kernel-push REF=registry/name:tag [ARCH=amd64]`. Engines pull it through SKIFF_KERNEL_REF.
.PHONY: kernel-push
kernel-push:
	$(if $(REF),,$(error kernel-push needs REF, the registry reference to push to: make kernel-push REF=registry/name:tag [ARCH=amd64]))
	$(GO) run . kernel push --dir $(BUILD)/kernel/$(or $(ARCH),$(shell $(GO) env GOARCH)) $(REF)

frontend:
	cd frontend && npm run build

# The TypeScript types and method table of the services, generated from app/ (frontend/src/lib/api.gen.ts).
tsgen:
	$(GO) run ./tools/tsgen

# The CLI / headless engine (no GUI): bin/skiff.
build: agent
	$(GO) build -o bin/skiff .

# The desktop app (Wails, GTK/WebKit on Linux): bin/skiff-gui.
gui: agent frontend
	$(GO) build -tags desktop,production -o bin/skiff-gui .

# Runs Skiff: the desktop window when there is a display, else the web dashboard on 127.0.0.1:8470.
run: setup gui build
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then exec ./bin/skiff-gui; \
	else echo "No display: serving the Skiff dashboard instead (open the URL below)."; \
	  exec ./bin/skiff serve --http 127.0.0.1:8470; fi

# Everything CI runs. Installs what it needs first.
test: setup
	bash scripts/test.sh

lint:
	$(GO) vet ./...
	staticcheck ./...

bench: setup agent kernel-debian
	bash scripts/bench.sh

# A stress run (not part of `test`): STRESS_N (default 200) `skiff run --rm busybox sh -c 'exit 3'`,
# two at a time, with exec and logs calls, against a fresh headless engine; fails on any wrong exit code.
stress: build
	bash scripts/stress.sh

clean:
	rm -rf $(BUILD) bin backend/vm/agentbin/skiff-agent-*

# Type-checks the darwin-only code (vz backend, menu-bar item, wake observer, the Wails app) from Linux:
# darwin/arm64 and darwin/amd64, with default tags (test files included, as `go test` on a Mac would
# compile them) and with the Wails app's `desktop,production`.
darwincheck:
	@mkdir -p $(BUILD)
	@$(GO) build -o $(BUILD)/darwincheck ./tools/darwincheck
	@rc=0; for a in arm64 amd64; do \
	  $(BUILD)/darwincheck -goarch $$a -test ./... || rc=1; \
	  $(BUILD)/darwincheck -goarch $$a -tags desktop,production ./... || rc=1; \
	done; exit $$rc

# The macOS app bundle _build/darwin/Skiff.app (on a Mac), signed ad hoc unless SIGN_IDENTITY names a
# certificate: the desktop app, the CLI (Contents/Resources/bin/skiff), the icon, and the guest kernel
# bundles of KERNEL_DIR (arm64 and amd64, default _build/kernel) in Contents/Resources/kernel.
KERNEL_DIR ?= $(BUILD)/kernel
.PHONY: package-darwin package-darwin-stage
package-darwin:
	KERNEL_DIR=$(KERNEL_DIR) bash build/darwin/package.sh $(BUILD)/darwin

# The same tree assembled on any OS from already built binaries (APP_BIN, CLI_BIN; left out when
# unset), unsigned: _build/darwin-stage/Skiff.app, to inspect what the Mac app will contain.
package-darwin-stage:
	KERNEL_DIR=$(KERNEL_DIR) APP_BIN=$(APP_BIN) CLI_BIN=$(CLI_BIN) bash build/darwin/stage.sh $(BUILD)/darwin-stage/Skiff.app
