# Set-up and test entry points; `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test bench clean-venv

# The virtual environment, re-made when requirements.txt or pyproject.toml change.
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

test: venv
	$(BIN)/python -m pytest -q --durations=10

bench: venv
	$(BIN)/python -m hmfs bench --backbone resnet50 --masking hm --img-size 400

clean-venv:
	rm -rf $(VENV)
