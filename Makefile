# One entry point for installing, running every phase, and testing.
# Every target installs what it needs first and is quick when it is already there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
RUN_DIR ?= $(CURDIR)/run
export RUN_DIR
export NO_MKDOCS_2_WARNING := 1

.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- install

# requirements.lock pins every package (the project's and the dev tools') to one version
# and its hashes: every install gets the same files. `make lock` writes it from
# pyproject.toml, keeping the versions already pinned.
LOCK := requirements.lock

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	@# the development tooling (devtools/, benchmarks/) is not part of the package: the
	@# venv finds it in the checkout, from any folder
	echo $(CURDIR) > $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/taskflow-checkout.pth
	touch $@

# The guard every task starts through (shared/execution/guard.c, see executors.py): a
# static binary built with musl, whose start-up is about 0.1 ms where glibc's is 0.9 here
# (glibc asks the CPU about itself at every start, and a virtual machine answers slowly).
# Without musl-tools it is built with gcc and glibc: slower to start, the same guard.
GUARD := $(BIN)/taskflow-guard
$(GUARD): shared/execution/guard.c $(VENV)/.installed
	@$(call apt-ensure,musl-gcc,musl-tools) || echo "musl-tools not installed: building with gcc"
	$$(command -v musl-gcc || echo gcc) -O2 -Wall -Wextra -static -o $@ $<

venv: $(VENV)/.installed $(GUARD)  ## create .venv with the project, its dev tools (as locked) and the task guard

# pip-compile keeps the versions pinned in its output file, so it starts from a copy of the
# lock; the lock is replaced only when it changed (else `make venv` would run again).
lock: venv  ## pin pyproject.toml's dependencies in requirements.lock; ARGS="--upgrade-package NAME"
	@cp $(LOCK) $(LOCK).new
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --extra dev --generate-hashes \
		--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK).new $(ARGS) pyproject.toml || { rm -f $(LOCK).new; exit 1; }
	@if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; else mv $(LOCK).new $(LOCK); fi

audit: venv  ## the locked packages against known vulnerabilities; fails on one with a fix
	$(PY) -m devtools.dependency_audit $(LOCK) $(ARGS)

# ---------------------------------------------------------------- infrastructure
# (see docs/infrastructure.md)

# Redis, ZooKeeper, Kafka and Prometheus as local processes (python -m devtools.infra).
# SERVICES=redis,kafka limits a target to some of them; RUN_DIR holds pids, logs and data.

services_arg = $(if $(SERVICES),--services $(SERVICES))

# $(call apt-ensure,program,package[,system service]): install the Debian package when the
# program is missing. Debian starts a freshly installed server as a system service on the
# default port; that service is stopped and disabled, because the launcher runs its own.
apt-ensure = command -v $(1) >/dev/null || { apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2) \
	$(if $(3),&& { systemctl disable --now $(3) >/dev/null 2>&1 || true; }); }

infra-install: venv  ## install Redis, Prometheus, Java, Maven when missing; resolve ZooKeeper and Kafka
	@$(call apt-ensure,redis-server,redis-server,redis-server)
	@$(call apt-ensure,prometheus,prometheus,prometheus)
	@$(call apt-ensure,java,openjdk-17-jre-headless)
	@$(call apt-ensure,mvn,maven)
	$(PY) -m devtools.infra install $(services_arg)

infra-up: infra-install  ## start the servers (all four, or SERVICES=...) and create the Kafka topics
	$(PY) -m devtools.infra up $(services_arg)

infra-down: venv  ## stop the servers: SIGTERM, SIGKILL after a grace period
	$(PY) -m devtools.infra down $(services_arg)

infra-status: venv  ## which servers run, on which ports, with which pids
	$(PY) -m devtools.infra status $(services_arg)

.PHONY: infra-install infra-up infra-down infra-status

# ---------------------------------------------------------------- phase stacks
# Each phase's processes run under one supervisord (deploy/supervisord.conf), with the
# programs listed in <phase dir>/processes.conf. `make phaseN-ctl ARGS="stop agent-2"`
# talks to it through supervisorctl.

# Phase 5's files are their owner's only: supervisord and its processes run with the
# umask 077 (its own log is made before it reads STACK_UMASK, hence the shell's umask).
stack_umask = $(if $(filter phase5,$(1)),077,022)
stack = STACK_DIR=$(RUN_DIR)/$(1) STACK_PROGRAMS=$(CURDIR)/$(2)/processes.conf STACK_PYTHON=$(PY) \
	STACK_UMASK=$(call stack_umask,$(1))
supervisord = umask $(call stack_umask,$(1)) && mkdir -p $(RUN_DIR)/$(1) \
	&& $(3) $(call stack,$(1),$(2)) $(BIN)/supervisord -c deploy/supervisord.conf
supervisorctl = $(call stack,$(1),$(2)) $(BIN)/supervisorctl -c deploy/supervisord.conf

# ---------------------------------------------------------------- phase 1

phase1-up: venv infra-install  ## Redis and one agent, in the background
	$(PY) -m devtools.infra up --services redis
	@$(call supervisord,phase1,phase1_mvp)
	@$(call stack,phase1,phase1_mvp) $(PY) -m devtools.ready
	@echo "logs: $(RUN_DIR)/phase1/"

phase1-demo: venv  ## submit tasks that succeed, fail and time out; print their hashes
	$(PY) -m devtools.demos.phase1

phase1-ctl: venv  ## supervisorctl for the phase 1 stack, e.g. ARGS="status"
	@$(call supervisorctl,phase1,phase1_mvp) $(ARGS)

phase1-down: venv  ## stop the agent, then Redis
	-@$(call supervisorctl,phase1,phase1_mvp) stop all
	-@$(call supervisorctl,phase1,phase1_mvp) shutdown
	$(PY) -m devtools.infra down --services redis

# ---------------------------------------------------------------- phase 2

phase2-up: venv infra-install  ## Redis, ZooKeeper, 2 schedulers and 3 agents
	$(PY) -m devtools.infra up --services redis,zookeeper
	@$(call supervisord,phase2,phase2_zookeeper)
	@$(call stack,phase2,phase2_zookeeper) $(PY) -m devtools.ready
	@echo "logs: $(RUN_DIR)/phase2/"

phase2-demo: venv  ## election, dispatch, then kill -9 the leader and a busy agent
	@$(call stack,phase2,phase2_zookeeper) $(PY) -m devtools.demos.phase2

phase2-ctl: venv  ## supervisorctl for the phase 2 stack, e.g. ARGS="stop agent:agent-2"
	@$(call supervisorctl,phase2,phase2_zookeeper) $(ARGS)

phase2-down: venv  ## stop schedulers and agents, then ZooKeeper and Redis
	-@$(call supervisorctl,phase2,phase2_zookeeper) stop all
	-@$(call supervisorctl,phase2,phase2_zookeeper) shutdown
	$(PY) -m devtools.infra down --services redis,zookeeper

# ---------------------------------------------------------------- phase 3

phase3-up: venv infra-install  ## Redis, ZooKeeper, Kafka, 2 schedulers, 3 agents, the task-manager
	$(PY) -m devtools.infra up --services redis,zookeeper,kafka
	@$(call supervisord,phase3,phase3_kafka)
	@$(call stack,phase3,phase3_kafka) $(PY) -m devtools.ready
	@echo "logs: $(RUN_DIR)/phase3/"

phase3-demo: venv  ## tasks flowing through the three topics, then an agent killed mid-task
	@$(call stack,phase3,phase3_kafka) $(PY) -m devtools.demos.phase3

phase3-ctl: venv  ## supervisorctl for the phase 3 stack, e.g. ARGS="status"
	@$(call supervisorctl,phase3,phase3_kafka) $(ARGS)

phase3-down: venv  ## stop the phase 3 processes, then Kafka, ZooKeeper and Redis
	-@$(call supervisorctl,phase3,phase3_kafka) stop all
	-@$(call supervisorctl,phase3,phase3_kafka) shutdown
	$(PY) -m devtools.infra down --services redis,zookeeper,kafka

# ---------------------------------------------------------------- phase 4

API_BIND ?= 127.0.0.1:8000
export API_BIND

phase4-up: venv infra-install  ## phase 3 + 2 gRPC task-managers + the REST API on $(API_BIND)
	$(PY) -m devtools.infra up --services redis,zookeeper,kafka
	@$(call supervisord,phase4,phase4_api)
	@$(call stack,phase4,phase4_api) $(PY) -m devtools.ready --api http://$(API_BIND)
	@echo "API: http://$(API_BIND)/api/v1/tasks   logs: $(RUN_DIR)/phase4/"

phase4-demo: venv  ## the requirement list's REST calls with curl and taskctl
	@$(call stack,phase4,phase4_api) API_URL=http://$(API_BIND) bash devtools/demos/phase4.sh

phase4-ctl: venv  ## supervisorctl for the phase 4 stack, e.g. ARGS="stop task-manager:task-manager-1"
	@$(call supervisorctl,phase4,phase4_api) $(ARGS)

phase4-down: venv  ## stop the phase 4 processes, then Kafka, ZooKeeper and Redis
	-@$(call supervisorctl,phase4,phase4_api) stop all
	-@$(call supervisorctl,phase4,phase4_api) shutdown
	$(PY) -m devtools.infra down --services redis,zookeeper,kafka

# ---------------------------------------------------------------- phase 5

ZIPKIN_ENDPOINT ?= http://127.0.0.1:9411/api/v2/spans
PROMETHEUS_URL ?= http://127.0.0.1:9090
phase5_servers := redis,zookeeper,kafka,prometheus,zipkin
# Each task runs in the full sandbox (docs/security.md, "The task sandbox"): a uid of its
# own, a cgroup, a read-only view with a private /tmp, its own PIDs, and no network; the
# agents refuse to start where the machine cannot give it (run as root). AGENT_SANDBOX=weak
# starts them without the parts it lacks. TASK_NETWORK=host gives tasks the host's
# network; TASK_WRITABLE_PATHS (host folders, ':' between them) is bound read-write into
# every task. Both are passed through from the environment: each gives something away.
AGENT_SANDBOX ?= full
TASK_NETWORK ?= none
TASK_WRITABLE_PATHS ?=
# The API is closed: it accepts the tokens hashed in this file (an admin's, made on the
# first start and saved in admin.token, mode 0600) and those made with `taskctl tokens`.
phase5_tokens = --file $(RUN_DIR)/phase5/tokens --name admin --role admin \
	--secret-out $(RUN_DIR)/phase5/admin.token
phase5_env = ZIPKIN_ENDPOINT=$(ZIPKIN_ENDPOINT) API_TOKENS_FILE=$(RUN_DIR)/phase5/tokens \
	AGENT_SANDBOX=$(AGENT_SANDBOX) TASK_NETWORK=$(TASK_NETWORK) \
	TASK_WRITABLE_PATHS='$(TASK_WRITABLE_PATHS)'
# The servers are closed too: Redis (ACL user), ZooKeeper (digest, ACLs), Kafka (SASL/SCRAM).
# Their credentials are made once into PHASE5_SECRETS (folder 0700, files 0600); every
# phase 5 process reads them from there (SECRETS_DIR), never from its environment. The
# servers keep their data in run/phase5/servers, apart from the open ones of phases 1-4.
# Everything under run/phase5 is its owner's only: folders 0700, files 0600 (the launcher
# and supervisord make them so; phase5-up first takes other users' bits off older ones).
PHASE5_SECRETS ?= $(RUN_DIR)/phase5/secrets
phase5_env += SECRETS_DIR=$(PHASE5_SECRETS)
phase5_infra = SECRETS_DIR=$(PHASE5_SECRETS) $(PY) -m devtools.infra
phase5_run_dir = --run-dir $(RUN_DIR)/phase5/servers

phase5-up: venv infra-install  ## the production system: phase 4's processes observed, Prometheus, Zipkin
	@install -d -m 0700 $(RUN_DIR)/phase5 && chmod -R go-rwx $(RUN_DIR)/phase5
	@$(PY) -m devtools.credentials $(PHASE5_SECRETS)
	REDIS_APPENDFSYNC=always $(phase5_infra) up $(phase5_run_dir) --services $(phase5_servers)
	@$(PY) -m shared.security.tokenfile $(phase5_tokens)
	@$(call supervisord,phase5,phase5_observability,$(phase5_env))
	@$(call stack,phase5,phase5_observability) SECRETS_DIR=$(PHASE5_SECRETS) $(PY) -m devtools.ready \
		--api http://$(API_BIND) --prometheus $(PROMETHEUS_URL)
	@echo "API:        http://$(API_BIND)/api/v1/tasks  (stats: /api/v1/stats)"
	@echo "Prometheus: $(PROMETHEUS_URL)/targets  $(PROMETHEUS_URL)/alerts"
	@echo "Zipkin:     $(patsubst %/api/v2/spans,%,$(ZIPKIN_ENDPOINT))/zipkin/"
	@echo "logs:       $(RUN_DIR)/phase5/ (one JSON object a line)"
	@echo "secrets:    $(PHASE5_SECRETS)/ (the servers' credentials, SECRETS_DIR)"

phase5-demo: venv  ## tasks that succeed, fail, time out, get cancelled, and a burst; where to look
	@$(call stack,phase5,phase5_observability) SECRETS_DIR=$(PHASE5_SECRETS) $(PY) -m devtools.demos.phase5 \
		--api http://$(API_BIND) --prometheus $(PROMETHEUS_URL) --zipkin $(patsubst %/api/v2/spans,%,$(ZIPKIN_ENDPOINT))

phase5-screenshots: venv  ## the docs' screenshots of Prometheus and Zipkin, from the running phase 5 stack
	@$(call apt-ensure,chromium,chromium)
	SECRETS_DIR=$(PHASE5_SECRETS) $(PY) -m devtools.screenshots --out docs/img --api http://$(API_BIND) \
		--prometheus $(PROMETHEUS_URL) --zipkin $(patsubst %/api/v2/spans,%,$(ZIPKIN_ENDPOINT))

phase5-ctl: venv  ## supervisorctl for the phase 5 stack, e.g. ARGS="stop agent:agent-3"
	@$(call supervisorctl,phase5,phase5_observability) $(ARGS)

phase5-down: venv  ## stop the phase 5 processes, then the servers
	-@$(call supervisorctl,phase5,phase5_observability) stop all
	-@$(call supervisorctl,phase5,phase5_observability) shutdown
	$(PY) -m devtools.infra down $(phase5_run_dir) --services $(phase5_servers)

# ---------------------------------------------------------------- generated files
# Committed, so that installing needs no code generator; tests/unit/test_generated.py
# fails when one is stale.

proto: venv  ## regenerate the gRPC code from shared/rpc/task_service.proto
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. \
		shared/rpc/task_service.proto

api-docs: venv  ## regenerate docs/api.md from the OpenAPI document
	$(PY) -m phase4_api.openapi --markdown > docs/api.md

# ---------------------------------------------------------------- checks

lint: venv  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: venv  ## build the docs site strictly
	$(BIN)/mkdocs build --strict --site-dir $(CURDIR)/site

# versus_celery also writes benchmarks/results/versus_celery.json and docs/img/versus_celery.png;
# BENCH_ARGS passes options to it, e.g. BENCH_ARGS="--tasks 1000 --backlog 1000".
bench: venv infra-install  ## measure throughput, latency and failover times (prints numbers)
	$(PY) -m benchmarks.phase2
	$(PY) -m benchmarks.phase3
	$(PY) -m benchmarks.phase4
	$(PY) -m benchmarks.phase5
	$(PY) -m benchmarks.redis_fsync
	$(PY) -m benchmarks.versus_celery $(BENCH_ARGS)

chaos: venv infra-install  ## faults against a private phase 5 system; prints what survived (CHAOS_TASKS, CHAOS_SECONDS)
	$(PY) -m devtools.chaos --tasks $(or $(CHAOS_TASKS),2000) --seconds $(or $(CHAOS_SECONDS),120) $(ARGS)

# In `make test` the audit only warns: an advisory published since, or a lookup this
# machine cannot make, does not turn a fresh clone red. `make audit` fails on it.
test: venv infra-install  ## lint, the dependency audit (as warnings), every test, and the docs build
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) -m devtools.dependency_audit $(LOCK) --warn-only
	$(BIN)/pytest -q
	$(BIN)/mkdocs build --strict --site-dir $(CURDIR)/site

# Races show up here: every test while two busy processes hold both cores (a loaded CI
# machine). ARGS passes options to pytest, e.g. ARGS="tests/e2e -x".
test-stress: venv infra-install  ## every test while busy processes hold every core: how to hunt races
	$(PY) -m devtools.stress -- $(BIN)/pytest -q $(ARGS)

.PHONY: help venv lock audit lint docs test test-stress bench chaos proto api-docs phase1-up phase1-demo phase1-ctl phase1-down \
	phase2-up phase2-demo phase2-ctl phase2-down phase3-up phase3-demo phase3-ctl phase3-down \
	phase4-up phase4-demo phase4-ctl phase4-down phase5-up phase5-demo phase5-screenshots phase5-ctl phase5-down
