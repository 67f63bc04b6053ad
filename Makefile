# writroot: `make demo` and `make test` set up what is missing (softhsm2, a venv, the package),
# then run. Both are idempotent and quiet on success.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.writroot-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PIP_QUIET := --quiet --disable-pip-version-check --no-input

.PHONY: demo test setup install lint bench clean native-tokens native-probe native-clean \
	native-tokens-for-tests

demo: setup
	@$(VENV)/bin/writroot demo

# The suite includes the native-token tests (pytest -m native, tests/test_native.py): the tokens
# are set up first when this user can become root; without them those tests skip with the
# reason, and fail in CI (CI=true).
test: setup native-tokens-for-tests
	@$(PY) -m pytest -rs

native-tokens-for-tests:
	@if [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
	  scripts/native-tokens.sh setup || echo "native tokens could not be set up (.cache/native-tokens/setup.log): tests marked native will $$([ "$$CI" = true ] && echo fail || echo skip)"; \
	else echo "native tokens need root or password-less sudo: tests marked native will $$([ "$$CI" = true ] && echo fail || echo skip)"; fi

setup: $(STAMP)
	@:

$(STAMP): pyproject.toml
	@command -v softhsm2-util >/dev/null 2>&1 || { \
	  echo "installing softhsm2 (apt)"; \
	  $(SUDO) apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq softhsm2 >/dev/null; }
	@command -v jq >/dev/null 2>&1 || { \
	  echo "installing jq (apt; the runbook's worked example, run by tests/test_runbook.py, uses it)"; \
	  $(SUDO) apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq jq >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (apt; tests/test_browser.py loads the HTML report in it)"; \
	  { $(SUDO) apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  { [ "$$CI" != true ] || exit 1; \
	    echo "chromium could not be installed: the browser test will be skipped"; }; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing python3-venv (apt)"; \
	  $(SUDO) apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv >/dev/null; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install $(PIP_QUIET) --upgrade pip >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@$(PY) -m pip install $(PIP_QUIET) -e '.[test]' >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@$(PY) -c 'import writroot, pkcs11, pqcrypto, slhdsa' || { echo "package install failed"; exit 1; }
	@touch $@

lint: setup
	@$(VENV)/bin/ruff check writroot tests bench
	@$(VENV)/bin/mypy --strict writroot

bench: setup
	@$(PY) -m bench

# A `writroot` on PATH: a link to the venv's entry point in ~/.local/bin (PREFIX to change).
PREFIX ?= $(HOME)/.local
install: setup
	@mkdir -p $(PREFIX)/bin && ln -sf $(abspath $(VENV))/bin/writroot $(PREFIX)/bin/writroot
	@echo "linked $(PREFIX)/bin/writroot -> $(abspath $(VENV))/bin/writroot"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "add $(PREFIX)/bin to your PATH";; esac

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Native PKCS#11 3.2 post-quantum tokens (freehsm-c as packaged and rebuilt, openCryptoki) in a
# Debian sid root under .cache/native-tokens/ (root needed): docs/native-tokens.md.
native-tokens:
	@scripts/native-tokens.sh setup

native-probe: native-tokens
	@scripts/native-tokens.sh exec -- python scripts/native_probe.py

native-clean:
	@scripts/native-tokens.sh clean
