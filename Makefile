# uwallbox: `make sim` runs the simulator, `make test` runs every test.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: sim test soak bench venv clean

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

sim: $(STAMP)
	$(PY) tools/sim --demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

soak: $(STAMP)
	UWB_SOAK=1 $(PY) -m pytest -q tests -m soak

clean:
	rm -rf build .pytest_cache
