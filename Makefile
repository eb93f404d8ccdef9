# MediMeet — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test e2e bench bench-records check venv browser ocr migrate seed clean messages messages-extract

## Create the virtualenv and install pinned dependencies (re-runs when requirements change).
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

## Debian's chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@bash scripts/ensure-chromium

## Compile the translation catalogues (locale/*/LC_MESSAGES/django.po and djangojs.po → .mo) with Babel: no GNU gettext needed.
messages: venv
	$(PY) manage.py compile_catalogues

## Refresh the .po catalogues from the code and templates (needs GNU gettext's xgettext; translators only).
messages-extract: venv
	$(PY) manage.py makemessages -l hi --ignore=.venv --ignore=var --ignore=bench --ignore=docs --no-location --no-obsolete
	$(PY) manage.py makemessages -d djangojs -l hi --ignore=.venv --ignore=var --ignore=bench --ignore=docs --ignore=static/vendor --ignore=staticfiles --no-location --no-obsolete

## Debian's Tesseract for OCR of scanned record documents (without it they are marked "OCR unavailable").
ocr:
	@bash scripts/ensure-tesseract

migrate: venv messages
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py pdf_signing_cert --if-missing

## Serve the whole product on http://127.0.0.1:$(PORT) in the embedded default:
## Daphne (HTTP + websockets) and a Celery worker with beat on the filesystem broker.
run: seed
	@bash scripts/run-embedded $(PORT)

## The whole test suite (SQLite, or PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: venv browser ocr messages
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## Browser tests only.
e2e: venv browser ocr messages
	$(VENV)/bin/pytest -m e2e $(PYTEST_ARGS)

## Benchmarks against a real server on PostgreSQL + Redis; results go to docs/performance.md.
bench: venv
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/records.py

## Medical records only: document encryption throughput and search over 100,000 documents (PostgreSQL).
bench-records: venv
	$(PY) bench/records.py $(BENCH_RECORDS_ARGS)

## Static checks CI runs besides the tests.
check: venv
	bash scripts/static-checks

clean:
	rm -rf var/ .pytest_cache
