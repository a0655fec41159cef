# Two commands do all set-up on a fresh machine:
#   make demo   install, start local Kafka/Cassandra/Flink, submit the job, replay data, show output
#   make test   install, lint, type-check, unit tests, integration tests on the real services
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := deploy/local/services

.PHONY: install jvm demo demo-secure test unit services down wipe savepoint-stop restore

install: $(VENV)/.installed jvm

# The project's own JVM functions (jvm/), needed by the job and the local Flink tests.
jvm:
	$(SERVICES) build-jvm

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	# --no-cache-dir: torch from PyPI brings ~4 GB of CUDA wheels; a cached copy
	# doubles that on disk, and a CI host once ran out of space in this step.
	$(PY) -m pip install --no-cache-dir --progress-bar on -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	deploy/local/demo

# The same on the secured stack (README "Security and privacy"), beside the plain one.
demo-secure: install
	STREAMREC_SECURE=1 deploy/local/demo

test: install
	tests/run

unit: install
	TESTS=unit tests/run

services: install
	$(SERVICES) up

down:
	$(SERVICES) down
	. deploy/local/secure-env.sh && $(SERVICES) down

wipe:
	$(SERVICES) down --wipe
	. deploy/local/secure-env.sh && $(SERVICES) down --wipe

# Stop the running job with a savepoint; prints the savepoint path to restore from.
savepoint-stop:
	@job=$$($(PY) -c "import json,urllib.request; print(next(j['jid'] for j in json.load(urllib.request.urlopen('http://127.0.0.1:$${FLINK_REST_PORT:-8081}/jobs/overview'))['jobs'] if j['name']=='streamrec-recommend' and j['state']=='RUNNING'))") && \
	$(SERVICES) flink stop --savepointPath file://$${STREAMREC_HOME:-$$HOME/.cache/streamrec}/data/flink/savepoints $$job

# make restore SAVEPOINT=file:///.../savepoint-xxxx
restore:
	@test -n "$(SAVEPOINT)" || { echo "usage: make restore SAVEPOINT=<path printed by savepoint-stop>"; exit 1; }
	$(SERVICES) flink run -d -s $(SAVEPOINT) -py jobs/recommend.py
