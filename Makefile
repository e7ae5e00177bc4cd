# uwallbox: `make sim` runs the simulator, `make test` runs every test.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: sim test soak bench venv clean distclean build deploy console mp32 FORCE

# The 32-bit MicroPython unix port the tests run under (an ESP32 is 32-bit too), built from the
# source kit (MP_KIT: a folder with micropython-*-unix-src.tar.gz, or a MicroPython checkout) into
# .mp/: build-32/micropython (plain) and build-32-frozen/micropython (manifest.py frozen in).
# Rebuilt when the kit, tools/mpbuild, or (frozen) manifest.py or a .py of firmware/ or lib/ changes.
MP_KIT ?= ../shared/micropython
MP_GIT_TAG ?= v1.28.0
MP_GIT_HASH ?= e0e9fbb17e
MP_DATE ?= 1775481169
MP := .mp
MP32 := $(MP)/build-32/micropython
MP32_FROZEN := $(MP)/build-32-frozen/micropython
MP_TARBALL := $(lastword $(filter %.tar.gz,$(MP_KIT)) $(wildcard $(MP_KIT)/micropython-*-unix-src.tar.gz))
# the frozen sources and their folders (a folder's mtime changes when a module is added or removed)
MP_FROZEN_SRC := $(shell find firmware lib -name __pycache__ -prune -o \( -name '*.py' -o -type d \) -print)
export MP_KIT MP_GIT_TAG MP_GIT_HASH MP_DATE

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# N=30: a classroom fleet of 30 chargers against one CSMS (docs/CLASSROOM.md), until Ctrl-C
sim: $(STAMP) mp32
	$(PY) sim/launch.py $(if $(N),--fleet $(N),--demo) $(ARGS)

mp32: $(MP32) $(MP32_FROZEN)

$(MP)/src.path: $(if $(MP_TARBALL),$(MP_TARBALL),FORCE) tools/mpbuild
	@tools/mpbuild prepare "$(MP_KIT)" $(MP)

$(MP32): $(MP)/src.path
	@tools/mpbuild unix $(MP) build-32

$(MP32_FROZEN): $(MP)/src.path manifest.py $(MP_FROZEN_SRC)
	@tools/mpbuild unix $(MP) build-32-frozen $(abspath manifest.py)

test: $(STAMP) mp32
	$(PY) tools/imports.py --check
	$(PY) -m pytest -q -n 2 tests
	@echo "the end-to-end tests again, with the firmware frozen into the 32-bit binary:"
	UWB_SIM_FROZEN=1 $(PY) -m pytest -q -n 2 -m "e2e and not soak and not slow" tests

soak: $(STAMP) mp32
	UWB_SOAK=1 $(PY) -m pytest -q tests -m soak

# benchmark table: printed, in bench/results.json and in README.md (## Benchmarks)
bench: $(STAMP) mp32
	$(PY) tools/bench.py --update-readme

# device image in build/ (DEV=1: no watchdog); then make deploy PORT=... BOARD=... SETTINGS=... (docs/ESP32.md)
build: $(STAMP)
	$(PY) tools/build.py $(if $(DEV),--dev)

deploy: build
	$(PY) tools/deploy.py --port "$(PORT)" --board "$(BOARD)" --settings "$(SETTINGS)" $(if $(FORCE),--force)

console: $(STAMP)
	$(PY) tools/deploy.py --port "$(PORT)" --console

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(MP)
