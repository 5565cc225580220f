# libgate: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_STAMP := var/.demo-loaded
DEMO_CONFIG := fixtures/config/demo.toml
LIBGATE := LIBGATE_CONFIG=$(DEMO_CONFIG) $(BIN)/libgate
DEMO_INPUTS := fixtures/marc/demo_main.iso fixtures/marc/real/cnmarc/bnu_cnmarc_10_utf8.iso \
	fixtures/marc/japanese/japanese_cnmarc.iso fixtures/marc/japanese/japanese_readings.iso \
	fixtures/items/demo_items.csv \
	fixtures/patrons/demo_patrons.csv $(DEMO_CONFIG)

.PHONY: run test install demo lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(INSTALLED)

# The demo catalogue on the embedded SQLite default (var/libgate.db): the seed's example and
# Chinese books (main), real BNU CNMARC records with their 906 copies (main), and the
# Japanese CNMARC catalogue with well-known titles written by us for readings (japanese), and
# demo readers. Reloading is harmless: unchanged records stay unchanged.
$(DEMO_STAMP): $(INSTALLED) $(DEMO_INPUTS)
	$(LIBGATE) init
	$(LIBGATE) load --database main fixtures/marc/demo_main.iso
	$(LIBGATE) load --database main --profile bnu fixtures/marc/real/cnmarc/bnu_cnmarc_10_utf8.iso
	$(LIBGATE) load --database japanese fixtures/marc/japanese/japanese_cnmarc.iso
	$(LIBGATE) load --database japanese fixtures/marc/japanese/japanese_readings.iso
	$(LIBGATE) items import fixtures/items/demo_items.csv
	$(LIBGATE) patrons import fixtures/patrons/demo_patrons.csv
	$(LIBGATE) ill readers confirm P0001
	touch $@

demo: $(DEMO_STAMP)

run: demo
	$(LIBGATE) serve

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

bench: $(INSTALLED)
	$(BIN)/python bench/load_bench.py

clean:
	rm -rf var .pytest_cache
