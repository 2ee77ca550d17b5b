# The two commands a new user needs:
#   make run   -- set everything up, install every bundle under apps/ with demo data, serve on :5000
#   make test  -- set everything up and run the test suite (SQLite; .ci/run adds PostgreSQL + Redis)
VENV    ?= .venv
PY      := $(VENV)/bin/python
LOOM    := $(VENV)/bin/loom
PYTEST  := $(VENV)/bin/pytest
HOST    ?= 127.0.0.1
PORT    ?= 5000
PYTEST_ARGS ?=

.PHONY: run test setup python js browser demo bench clean

setup: python js

python: $(VENV)/.installed
$(VENV)/.installed: setup.cfg pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

js: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Browser tests drive Debian's Chromium; install it when missing and we may (root on Debian).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null) || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "note: chromium not installed; browser tests will be skipped"; fi; }

run: setup
	$(LOOM) init
	@for app in apps/*/; do if [ -f "$$app/app.yaml" ]; then $(LOOM) app install "$$app" --yes || exit 1; fi; done
	@for app in apps/*/; do if [ -f "$$app/demo/generator.py" ]; then $(LOOM) demo --app "$$(basename $$app)" --size small --if-empty || exit 1; fi; done
	@echo ""
	@echo "Loom is starting on http://$(HOST):$(PORT)"
	@echo "Log in as one of the demo users above (password demo1234), or as admin with the"
	@echo "password 'loom init' printed on the first run (reset it: loom user set-password admin)."
	$(LOOM) serve --host $(HOST) --port $(PORT)

test: setup browser
	$(PYTEST) -q $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench all

clean:
	rm -rf $(VENV) node_modules instance *.egg-info
