# opsmop — see README.md. Every target works on a fresh Debian/Ubuntu
# machine; `make test` is what CI runs (.ci/run).
GO      ?= go
BIN     ?= bin/opsmop
LABDIR  ?= /run/opsmop-lab/manual
FUZZTIME ?= 8s

.PHONY: build test unit fuzz lint lab-up lab-down demo deps clean dist

build:
	$(GO) build -o $(BIN) .

# deps installs what the lab needs (root, Debian/Ubuntu).
deps:
	bash .ci/deps

# test runs every test (the lab tests need root; CI runs as root), then a
# short fixed-time run of every fuzz target. A fuzz run that ends with
# Go's bare coordinator deadline and no failing input (go.dev/issue/75804,
# more frequent with targets whose executions run a real sh) is run
# again, up to 5 times; any failing input fails at once.
# Packages run one at a time (-p 1): their lab tests time real processes
# on real hosts, and two packages' labs at once on a 2-core machine (the
# root package starts 50 hosts) made timing bounds flaky.
test: lint
	$(GO) test -p 1 -count=1 -timeout 30m ./...
	$(GO) test -count=1 -race -timeout 20m ./engine/... ./connection/...
	$(MAKE) fuzz

unit:
	$(GO) test ./...

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    ok=; for try in 1 2 3 4 5; do \
	      if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/opsmop-fuzz.log 2>&1; then ok=1; break; fi; \
	      grep -q 'context deadline exceeded' /tmp/opsmop-fuzz.log && ! grep -q 'Failing input written' /tmp/opsmop-fuzz.log || break; \
	      echo "fuzz $$f: Go's fuzz coordinator reported a bare deadline at the end of -fuzztime (go.dev/issue/75804, fixed in Go 1.27), no input: once more"; \
	    done; \
	    [ -n "$$ok" ] || { cat /tmp/opsmop-fuzz.log; exit 1; }; \
	  done; \
	done

# TARGET_SCRIPTS are the shell scripts opsmop sends to targets' sh
# (embedded by the connection package): lint runs shellcheck on them and
# parses them (-n) with dash, bash --posix and busybox ash, the shells a
# target's sh may be. `make deps` installs those tools.
TARGET_SCRIPTS = $(wildcard connection/*.sh)

# lint also runs staticcheck and deadcode, pinned as tool dependencies in
# go.mod (`go tool` builds them from the module cache; .ci/run's
# `go mod download` fills it). deadcode -test counts the tests as roots
# too, so it reports functions nothing calls, not even a test; any finding
# fails lint.
lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@out=$$($(GO) tool deadcode -test ./...) || exit 1; \
	  if [ -n "$$out" ]; then echo "deadcode: unreachable from every main and test:"; echo "$$out"; exit 1; fi; \
	  echo "deadcode -test: no unreachable functions"
	@for t in shellcheck dash bash busybox; do \
	  command -v $$t >/dev/null || { echo "lint: $$t not found: run make deps (or apt-get install shellcheck busybox)"; exit 1; }; \
	done
	shellcheck --shell=sh $(TARGET_SCRIPTS)
	@set -e; for f in $(TARGET_SCRIPTS); do \
	  dash -n $$f || { echo "lint: $$f: syntax error under dash"; exit 1; }; \
	  bash --posix -n $$f || { echo "lint: $$f: syntax error under bash --posix"; exit 1; }; \
	  busybox ash -n $$f || { echo "lint: $$f: syntax error under busybox ash"; exit 1; }; \
	done; echo "sh -n (dash, bash --posix, busybox ash): $(words $(TARGET_SCRIPTS)) scripts parse"

lab-up: build
	$(GO) run ./internal/lab/cmd/opsmop-lab up --dir $(LABDIR)

lab-down:
	$(GO) run ./internal/lab/cmd/opsmop-lab down --dir $(LABDIR)

# demo runs examples/demo.sh against a throwaway lab (root) and ends by
# writing the apply's report page, bin/demo/report.html (docs/report.md).
demo: deps build
	bash examples/demo.sh

clean:
	rm -rf bin

# bench compares opsmop with Ansible (and ssh/scp as the floor) on lab
# hosts; root. See docs/benchmarks.md.
.PHONY: bench
bench: build
	bash bench/run.sh

# man writes the manual page, generated from the CLI definition, to
# bin/opsmop.1; install installs the binary, the manual page and the
# completion scripts under PREFIX (default /usr/local).
PREFIX ?= /usr/local
.PHONY: man install
man: build
	$(BIN) man > bin/opsmop.1

install: man
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/opsmop
	install -D -m 0644 bin/opsmop.1 $(DESTDIR)$(PREFIX)/share/man/man1/opsmop.1
	$(BIN) completion bash > bin/opsmop.bash && install -D -m 0644 bin/opsmop.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/opsmop
	$(BIN) completion zsh > bin/opsmop.zsh && install -D -m 0644 bin/opsmop.zsh $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_opsmop
	$(BIN) completion fish > bin/opsmop.fish && install -D -m 0644 bin/opsmop.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/opsmop.fish

# dist builds static binaries (linux amd64 and arm64, CGO off; the commit
# is stamped by Go's VCS info) and .deb and .rpm packages of them with
# nfpm (a go.mod tool), with the manual page and completion scripts, into
# dist/.
DIST_VERSION ?= $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' cli.go)$(shell git rev-parse --short HEAD >/dev/null 2>&1 && echo "~git$$(git rev-parse --short HEAD)")
dist: build
	@rm -rf dist && mkdir -p dist/docs
	@$(BIN) man > dist/docs/opsmop.1
	@set -e; for sh in bash zsh fish; do $(BIN) completion $$sh > dist/docs/opsmop.$$sh; done
	@set -e; for arch in amd64 arm64; do \
	  bin=dist/opsmop_$(DIST_VERSION)_linux_$$arch; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w' -o $$bin . ; \
	  for fmt in deb rpm; do \
	    OPSMOP_VERSION='$(DIST_VERSION)' OPSMOP_ARCH=$$arch OPSMOP_BIN=$$bin OPSMOP_DOCS=dist/docs $(GO) tool nfpm package -f packaging/nfpm.yaml -p $$fmt -t dist/ >/dev/null; \
	  done; \
	done
	@ls -1 dist
