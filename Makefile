# ddb-export-remediator: `make demo` and `make test` are the two commands a new user runs.
# Tools (moto, cargo-lambda, aws-sam-cli, cfn-lint) install pinned into .venv on first use.

SHELL := /bin/bash
.DEFAULT_GOAL := help

SYS_PY      := $(shell command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
TOOLS_STAMP := $(VENV)/.tools-$(shell cat tools/requirements.txt tools/constraints.txt 2>/dev/null | sha256sum | cut -c1-12)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
REGION      ?= us-east-1
EVENT       ?= events/manual-diagnose.json
ARM_TARGET  := aarch64-unknown-linux-gnu

.PHONY: help tools iam-sim lint-tools checkov bench-tools demo test unit integration lint fmt validate build invoke deploy clean ci fuzz bench bench-sweep bench-org bench-diagnosis bench-reliability bench-worlds bench-follow

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(TOOLS_STAMP): tools/requirements.txt tools/constraints.txt
	@test -n "$(SYS_PY)" || { echo "python3 is required" >&2; exit 1; }
	@echo "installing the pinned tools into $(VENV) (once: about 850 MB)"
	$(SYS_PY) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r tools/requirements.txt -c tools/constraints.txt
	@rm -f $(VENV)/.tools-* && touch $@

# The emulator's enforcing mode asks @cloud-copilot/iam-simulate (npm, AGPL-3.0, exact version in
# tools/iam_sim/package-lock.json) to judge an export's requests: a test-time tool only, installed
# into tools/iam_sim/node_modules (never global), never linked into or shipped with the product.
IAM_SIM_STAMP := tools/iam_sim/node_modules/.installed-$(shell cat tools/iam_sim/package-lock.json 2>/dev/null | sha256sum | cut -c1-12)

$(IAM_SIM_STAMP): tools/iam_sim/package.json tools/iam_sim/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 18 or later) is required for the emulator's enforcing mode" >&2; exit 1; }
	npm ci --prefix tools/iam_sim --ignore-scripts --no-audit --no-fund --loglevel=error
	@rm -f tools/iam_sim/node_modules/.installed-* && touch $@

iam-sim: $(IAM_SIM_STAMP) ## install the pinned IAM evaluator of the emulator's enforcing mode into tools/iam_sim

tools: $(TOOLS_STAMP) $(IAM_SIM_STAMP) ## install the pinned local tools into .venv (and tools/iam_sim)

LINT_VENV  := .venv-lint
LINT_STAMP := $(LINT_VENV)/.tools-$(shell cat tools/requirements-lint.txt tools/constraints-lint.txt 2>/dev/null | sha256sum | cut -c1-12)

$(LINT_STAMP): tools/requirements-lint.txt tools/constraints-lint.txt
	$(SYS_PY) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LINT_VENV)/bin/python -m pip install --quiet -r tools/requirements-lint.txt -c tools/constraints-lint.txt
	@rm -f $(LINT_VENV)/.tools-* && touch $@

lint-tools: $(LINT_STAMP) ## install the pinned CloudFormation security linter (checkov) into .venv-lint

# template.yaml with OrgMode=on (and every optional grant on): sam validate has no parameter
# overrides, so the lint targets check this rendered copy beside the defaults.
ORG_ON_TEMPLATE := .aws-sam/lint/template-orgmode-on.yaml
ORG_ON_PARAMS   := OrgMode=on OrganizationId=o-exampleorg1 MemberRoleName=ddb-export-remediator-spoke \
  SpokeOrganizationalUnitIds=ou-exam-12345678 SpokeRegions=us-east-1,us-west-2 \
  ExportBuckets=amzn-s3-demo-bucket,amzn-s3-demo-bucket2 KeyPolicyPatch=on \
  KeyArns=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab

$(ORG_ON_TEMPLATE): template.yaml tools/render_params.py
	@mkdir -p $(@D)
	$(SYS_PY) tools/render_params.py template.yaml $@ $(ORG_ON_PARAMS)

checkov: lint-tools $(ORG_ON_TEMPLATE) ## checkov on template.yaml (OrgMode off and on) and org/*.yaml, offline; every suppression is justified
	$(LINT_VENV)/bin/checkov -f template.yaml -f $(ORG_ON_TEMPLATE) -f org/spoke-roles.yaml -f org/spoke-rules.yaml \
	  --framework cloudformation --skip-download --compact --quiet

# demo echoes before installing anything, so a cold clone says what it is doing at once.
demo: ## emulator + function under cargo lambda watch, four scenarios end to end (first run ~11 min)
	@echo "make demo: a first run installs the pinned tools into $(VENV) and builds the"
	@echo "function (about 11 minutes cold on 2 cores, cargo's progress below); later ~1 min."
	@$(MAKE) -s --no-print-directory tools
	$(PY) tools/demo.py

test: tools lint ## everything: fmt, clippy, unit, adapter, integration (moto) and template checks (~10 min after make demo)
	cargo test --lib --bins --tests
	$(MAKE) --no-print-directory validate

unit: ## unit and adapter tests only (no emulator)
	cargo test --lib

integration: tools ## integration tests against the emulator only
	cargo test --test handler

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

fmt: ## format the code
	cargo fmt --all

validate: tools $(ORG_ON_TEMPLATE) ## sam validate --lint, cfn-lint and checkov on template.yaml (OrgMode off and on) and org/*.yaml
	sam validate --lint --region $(REGION)
	sam validate --lint --region $(REGION) --template-file $(ORG_ON_TEMPLATE)
	cfn-lint template.yaml $(ORG_ON_TEMPLATE) org/spoke-roles.yaml org/spoke-rules.yaml
	$(MAKE) --no-print-directory checkov

build: tools ## sam build: the arm64 bootstrap through cargo lambda (~15 min cold on 2 cores)
	@rustup target list --installed | grep -qx $(ARM_TARGET) || rustup target add $(ARM_TARGET)
	sam build --beta-features

invoke: tools ## run one event file locally: make invoke EVENT=events/<case>.json
	$(PY) tools/invoke.py $(EVENT)

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.tools-$(shell cat tools/requirements-bench.txt 2>/dev/null | sha256sum | cut -c1-12)

$(BENCH_STAMP): tools/requirements-bench.txt
	$(SYS_PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r tools/requirements-bench.txt
	@rm -f $(BENCH_VENV)/.tools-* && touch $@

bench-tools: $(BENCH_STAMP) ## install the benchmark's peer (Cloud Custodian, pinned) into .venv-bench

fuzz: ## property-based fuzzing: 5 targets x 250,000 generated cases (events, policies, key-policy merge)
	FUZZ_CASES=250000 cargo test --release --test fuzz -- --test-threads=2

bench: tools bench-tools ## init, size, memory, round trips, sweep vs Cloud Custodian -> BENCHMARKS.md (~15 min)
	@rustup target list --installed | grep -qx $(ARM_TARGET) || rustup target add $(ARM_TARGET)
	$(PY) tools/bench.py

bench-sweep: tools ## sweep cost at 1,000 and 10,000 exports on the emulator -> BENCHMARKS-sweep.md
	cargo run --release --example bench_sweep -- 1000 10000

bench-org: tools ## organization sweep over 200 accounts x 2 Regions, and one spoke incident -> BENCHMARKS-org.md
	$(PY) tools/bench_org.py

bench-reliability: tools ## 1,000 failures x 3 concurrent deliveries, 10 % faults, 20 kills: lost / duplicate / unaudited -> BENCHMARKS-reliability.md (45+ min)
	$(PY) tools/bench_reliability.py --write BENCHMARKS-reliability.md

bench-follow: tools ## requests per scheduled run with 0, 10 and 1,000 retries followed in flight, and to close them -> BENCHMARKS-follow.md
	$(PY) tools/bench_follow.py

bench-diagnosis: ## pure diagnosis throughput on one core -> BENCHMARKS-diagnosis.md
	cargo run --release --example bench_diagnosis

deploy: build ## sam deploy --guided (needs AWS credentials)
	sam deploy --guided

# .ci/run builds into ~/.cache/ddb-export-remediator/target (outside the clone): clean leaves it.
clean: ## remove build output, the venvs and demo logs (not .ci/run's ~/.cache/ddb-export-remediator)
	cargo clean
	rm -rf .aws-sam $(VENV) $(BENCH_VENV) $(LINT_VENV) .demo tools/iam_sim/node_modules

ci: test ## what .ci/run runs

# A fixed seed (comparable between runs) plus a new one each run (fresh worlds); both printed.
WORLDS_SEED ?= 20251208
WORLDS_NEW  ?= $(shell date +%s)
bench-worlds: tools ## 1,000 random export worlds judged by iam-simulate, each failure handed to the function: BENCHMARKS-worlds.md (~20 min)
	cargo build --bin ddb-export-remediator --bin ddb-export-doctor
	@mkdir -p .demo
	$(PY) tools/worlds.py run --seed $(WORLDS_SEED) --count 600 --seed $(WORLDS_NEW) --count 400 \
	  --json .demo/worlds.json --markdown BENCHMARKS-worlds.md
