# uwallbox: `make sim` runs the simulator, `make test` runs every test.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: sim test soak bench venv clean build deploy console

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

sim: $(STAMP)
	$(PY) sim/launch.py --demo $(ARGS)

test: $(STAMP)
	$(PY) tools/imports.py --check
	$(PY) -m pytest -q -n 2 tests

soak: $(STAMP)
	UWB_SOAK=1 $(PY) -m pytest -q tests -m soak

# benchmark table: printed, in bench/results.json and in README.md (## Benchmarks)
bench: $(STAMP)
	$(PY) tools/bench.py --update-readme

# device image in build/ (DEV=1: no watchdog); then make deploy PORT=... BOARD=... SETTINGS=... (docs/ESP32.md)
build: $(STAMP)
	$(PY) tools/build.py $(if $(DEV),--dev)

deploy: build
	$(PY) tools/deploy.py --port "$(PORT)" --board "$(BOARD)" --settings "$(SETTINGS)"

console: $(STAMP)
	$(PY) tools/deploy.py --port "$(PORT)" --console

clean:
	rm -rf build .pytest_cache
