# The two commands of the README: `make test` and `make demo`. Both do all of their own set-up.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
KAFKA := deploy/kafka/local-kafka.sh
# The CDNOW data ships inside PyPI `lifetimes`; only its data files are used, so no dependencies.
LIFETIMES := lifetimes==0.11.3

.PHONY: test test-repeat demo install system-deps lint kafka-start kafka-stop bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,fast]"
	$(PY) -m pip install -q --no-deps $(LIFETIMES)
	touch $@

install: $(VENV)/.installed

# Debian packages the tests drive for real: Prometheus (server + promtool) and headless Chromium.
SYSTEM_TOOLS := promtool prometheus chromium chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus chromium chromium-driver >/dev/null; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Starts the local broker (on free ports unless KAFKA_PORT is set), runs the whole suite against it,
# and always stops the broker.
test: install system-deps
	$(KAFKA) fetch
	export KAFKA_PORT=$${KAFKA_PORT:-auto}; \
	export $$($(KAFKA) start | tail -n 1); \
	status=0; \
	$(MAKE) --no-print-directory lint || status=$$?; \
	$(VENV)/bin/pytest $(PYTEST_ARGS) || status=$$?; \
	$(KAFKA) stop; \
	exit $$status

# The Kafka-dependent suites N times in a row beside LOAD busy processes: how flakes are hunted.
N ?= 10
LOAD ?= 2
test-repeat: install system-deps
	tests/repeat.sh $(N) $(LOAD)

demo: install
	$(PY) -m deploy.demo

kafka-start:
	$(KAFKA) start

kafka-stop:
	$(KAFKA) stop

# Benchmarks run in a virtualenv of their own: the Quix Streams peer pins an older confluent-kafka
# (the Bytewax peer's accepts it).
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e ".[fast,bench]"
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps $(LIFETIMES)
	touch $@

bench: $(BENCH_VENV)/.installed
	$(KAFKA) fetch
	$(BENCH_VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	$(KAFKA) stop || true
	rm -rf $(VENV) $(BENCH_VENV) .local
