# Two set-up commands on a fresh Debian 12 machine, as root:
#   make demo   - the lab of containers, a provisioned primary + standby with a VIP, status,
#                 a backup proved by a restore, switchovers, the failover/failback cycle
#   make test   - lint, unit tests, and integration tests against the lab
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DRCTL := $(BIN)/drctl
export PATH := $(abspath $(BIN)):$(PATH)
# Debian packages the control machine needs (docker engine, image build, ssh, browser tests)
SYSTEM_PACKAGES := docker.io debootstrap openssh-client iptables postgresql-client chromium chromium-driver
LINT_PATHS := playbooks roles inventories/example molecule

.PHONY: all setup system demo test lint unit integration molecule bench clean lab-down

all: test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed system

system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: setup
	$(DRCTL) lab up
	$(DRCTL) ping
	$(DRCTL) provision
	$(DRCTL) status
	$(DRCTL) backup --type full
	$(DRCTL) verify-backup
	$(DRCTL) switchover --to pg2 --yes
	$(DRCTL) switchover --to pg1 --yes
	$(BIN)/python bin/demo-cycle
	$(DRCTL) auto enable
	$(DRCTL) drill --scenario auto-failover --yes
	$(DRCTL) auto disable --yes
	$(DRCTL) drill --scenario failback-cycle --yes

lint: $(VENV)/.installed
	$(BIN)/ruff check drctl tests bench molecule playbooks/action_plugins bin/argspecs bin/demo-cycle
	$(BIN)/mypy
	$(BIN)/mypy --strict -p drctl.rules -p drctl.node
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production $(LINT_PATHS)

unit: $(VENV)/.installed
	$(BIN)/pytest -q tests/unit

integration: setup
	$(DRCTL) lab up --fresh
	$(BIN)/pytest -q -x tests/integration

molecule: setup
	DRCTL_LAB_IMAGE=$$($(DRCTL) lab image) $(BIN)/molecule test -s default
	DRCTL_LAB_IMAGE=$$($(DRCTL) lab image) $(BIN)/molecule test -s failover

test: setup lint unit integration molecule

bench: setup
	$(BIN)/python bench/cli_help.py
	$(BIN)/python bench/lab_up.py
	$(BIN)/python bench/provision.py
	$(BIN)/python bench/status.py
	$(BIN)/python bench/ha.py
	$(BIN)/python bench/rewind.py
	$(BIN)/python bench/backup.py
	$(BIN)/python bench/drill.py
	$(BIN)/python bench/auto.py

lab-down: $(VENV)/.installed
	$(DRCTL) lab down

clean: lab-down
	rm -rf $(VENV) .drctl .pytest_cache
