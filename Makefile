# Two set-up commands on a fresh Debian 12 machine, as root:
#   make demo   - the lab of containers, a provisioned primary + standby with a VIP, status,
#                 a backup proved by a restore, a switchover drill and a power-loss
#                 failover/failback drill under a write load, each with its report
#   make test   - lint, unit tests, integration tests against the lab, molecule; ends with
#                 a table of how long each phase took
# and, for the edit loop:
#   make check  - lint and unit tests only (no lab, about a minute)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DRCTL := $(BIN)/drctl
export PATH := $(abspath $(BIN)):$(PATH)
# Debian packages the control machine needs: for the lab (docker engine, image build, ssh)
# and, for the tests only, a browser and rsync (the unit tests of the file copy run it).
SYSTEM_PACKAGES := docker.io debootstrap openssh-client iptables postgresql-client
TEST_PACKAGES := chromium chromium-driver rsync
LINT_PATHS := playbooks roles inventories/example molecule bench/peer

.PHONY: all setup setup-test system demo demo-auto demo-dr campaign check test lint unit integration molecule bench clean lab-down collection ee-context

all: test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lab]'
	touch $@

# The venv (pip) and the Debian packages (apt) side by side: both mostly wait on the
# network, and a fresh machine needs both before anything else.
setup:
	@$(MAKE) --no-print-directory -j2 $(VENV)/.installed system

setup-test:
	@$(MAKE) --no-print-directory -j2 $(VENV)/.installed system \
	  SYSTEM_PACKAGES="$(SYSTEM_PACKAGES) $(TEST_PACKAGES)"
	@$(MAKE) --no-print-directory $(BIN)/promtool

# promtool, for the alerting rules' tests, taken out of Debian's prometheus package
# without installing the package: no Prometheus server starts on this machine.
$(BIN)/promtool: | $(VENV)/.installed
	@tmp=$$(mktemp -d) && cd $$tmp && \
	{ apt-get download -qq prometheus 2>/dev/null || \
	  { apt-get update -qq && apt-get download -qq prometheus; }; } && \
	dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool && \
	install -m 0755 usr/bin/promtool $(abspath $(BIN))/promtool && \
	cd / && rm -rf $$tmp && echo "promtool: $$($(abspath $(BIN))/promtool --version | head -1)"

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
	$(DRCTL) drill --scenario switchover --yes
	$(DRCTL) drill --scenario failback-cycle --yes
	$(DRCTL) status

# After `make demo`: automatic failover armed, the primary powered off, the standby
# promoting itself under a write load; then disarmed again.
demo-auto: setup
	$(DRCTL) auto enable
	$(DRCTL) drill --scenario auto-failover --yes
	$(DRCTL) auto disable --yes

# Two sites (dc1: pg1, pg2, backup1, app1, app3; dc2: pg3, backup2, app2; dns1 on the WAN
# side): the whole of dc1 loses power under load, dc2 takes over and the service's name
# follows it, dc1 comes back and the primary (and the name) go home. Rebuilds the lab's
# containers when it had one site.
demo-dr: setup
	@echo "make demo-dr: a two-site lab (12 containers with the WAN router, the DNS server, the object store and the cloud host),"
	@echo "provisioned, then dc1 powered off under load and brought home: about 12 minutes on 2 cores."
	$(DRCTL) lab up --sites 2
	$(DRCTL) ping
	$(DRCTL) provision
	$(DRCTL) status
	$(DRCTL) drill --scenario site-failback-cycle --allow-data-loss --yes
	$(DRCTL) status

# The fault campaign (issue #34): seeded faults on the one-site lab with automatic
# failover armed, judged by the set-workload checker; not part of `make test`.
# DURATION in seconds of faults (default 600); SEED reproduces a schedule (default: drawn).
DURATION ?= 600
SEED ?=
campaign: setup
	$(DRCTL) lab up
	$(DRCTL) provision
	$(BIN)/python -m drctl_lab.run_campaign --duration $(DURATION) $(if $(SEED),--seed $(SEED))

lint: $(VENV)/.installed
	$(BIN)/ruff check drctl drctl_lab tests bench molecule plugins bin/argspecs bin/role-readmes bin/test-phases \
	  roles/demo_app/files
	$(BIN)/mypy
	$(BIN)/mypy --strict -p drctl.rules -p drctl.node
	$(BIN)/mypy --strict plugins/modules/drctl_pg_node_state.py drctl_lab/checker.py \
	  drctl_lab/campaign.py drctl_lab/faults.py drctl_lab/campaign_html.py
	$(BIN)/yamllint -s .
	ANSIBLE_HOME=$(CURDIR)/.ansible $(BIN)/ansible-lint --profile production $(LINT_PATHS)

unit: $(VENV)/.installed $(BIN)/promtool
	$(BIN)/pytest -q -rs tests/unit

check: lint unit

integration: setup-test
	$(DRCTL) lab up --fresh
	$(BIN)/pytest -q -x tests/integration

# The playbooks without drctl, as AWX runs them: from the collection built from this
# checkout and installed into a scratch path (the only collections path the scenario's
# plays see), by their names; on the warm lab image (provision's packages installed,
# nothing configured: a provision from bare hosts is test_03's).
MOLECULE_COLLECTIONS := $(CURDIR)/.ansible/drctl-collection
molecule: setup
	@rm -rf $(MOLECULE_COLLECTIONS) && mkdir -p $(MOLECULE_COLLECTIONS)/dist
	@$(BIN)/ansible-galaxy collection build --output-path $(MOLECULE_COLLECTIONS)/dist . >/dev/null
	@$(BIN)/ansible-galaxy collection install --force --no-deps -p $(MOLECULE_COLLECTIONS) \
	  $(MOLECULE_COLLECTIONS)/dist/drctl-cluster-*.tar.gz >/dev/null
	ANSIBLE_HOME=$(CURDIR)/.ansible DRCTL_MOLECULE_COLLECTIONS=$(MOLECULE_COLLECTIONS) \
	  DRCTL_LAB_IMAGE=$$(DRCTL_LAB_WARM=1 $(DRCTL) lab image) $(BIN)/molecule test

# Every phase timed, the table printed at the end (test-artifacts/phases.json keeps it).
test: setup-test
	$(BIN)/python bin/test-phases

bench: setup
	$(BIN)/python bench/cli_help.py
	$(BIN)/python bench/lab_up.py
	$(BIN)/python bench/ansible_cost.py
	$(BIN)/python bench/provision.py
	$(BIN)/python bench/lab_idle.py --runs 3
	$(BIN)/python bench/status.py
	$(BIN)/python bench/ha.py
	$(BIN)/python bench/rewind.py
	$(BIN)/python bench/backup.py
	$(BIN)/python bench/drill.py
	$(BIN)/python bench/auto.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/app_vip.py

lab-down: $(VENV)/.installed
	$(DRCTL) lab down

# The repository as the Ansible collection drctl.cluster (galaxy.yml), in build/collection/.
collection: $(VENV)/.installed
	rm -rf build/collection
	$(BIN)/ansible-galaxy collection build --output-path build/collection

# The execution environment's build context (Containerfile and _build/) in build/ee; the
# image itself is built with `ansible-builder build` where an image registry is reachable.
ee-context: collection
	$(BIN)/ansible-builder create -f execution-environment.yml -c build/ee --output-filename Containerfile

clean: lab-down
	rm -rf $(VENV) .drctl .pytest_cache
