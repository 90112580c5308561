# make run   - install, migrate, and start web + worker + demo jobs on SQLite (var/)
# make test  - install and run the test suite (DATABASE_URL picks the database)
# make test-reliability - only the reliability and security suite (docs/reliability.md); make test runs it too
# make bench - install and run the benchmark on Postgres (BENCH_DATABASE_URL, BENCH_REDIS_URL; docs/benchmark.md)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ADDR ?= 127.0.0.1:8000

.PHONY: install run test test-reliability bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The demo: DEBUG on, the simulated AI matching service served by this same web server.
run: export DEBUG ?= true
run: export DEMO_MODE ?= true
run: export AI_MATCHING_URL ?= http://$(ADDR)/demo/ai-matching
run: export AI_MATCHING_API_KEY ?= demo-key
run: export SITE_URL ?= http://$(ADDR)
# Django answers 400 to a Host it does not know: ADDR's host (without its port) joins the defaults.
run: export ALLOWED_HOSTS ?= localhost,127.0.0.1,[::1],$(patsubst %:$(lastword $(subst :, ,$(ADDR))),%,$(ADDR))
# Alerts in the demo notify by email, written to files under var/mail/ instead of sent.
run: export EMAIL_BACKEND ?= django.core.mail.backends.filebased.EmailBackend
run: export ALERTS_RECIPIENTS_WARNING ?= oncall@example.com
run: export ALERTS_RECIPIENTS_ERROR ?= oncall@example.com
run: export ALERTS_RECIPIENTS_CRITICAL ?= oncall@example.com
# A dead man's switch the demo keeps healthy: an ai_matching job completes every few seconds.
run: export HEALTH_EXPECTED_JOBS ?= {"ai_matching": 10}
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_admin
	$(BIN)/python manage.py run_demo --addr $(ADDR)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

test-reliability: install
	$(BIN)/pytest -m reliability -rs $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
