# Two commands on a fresh machine:
#   make demo   create .venv, install nst-plugin, stylize the samples into out/
#   make test   create .venv, install nst-plugin with its test dependencies, run the tests
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test bench clean blender-venv

# Blender as a Python module (bpy 5.0.1, Python 3.11) for the Blender add-on's tests, in its own venv: bpy pins
# numpy 1.26.4 and the engine needs numpy >= 2. tests/test_blender_addon.py runs blender_addon/tests with it.
BLENDER_PYTHON ?= python3.11
BLENDER_VENV ?= .venv-blender

$(BLENDER_VENV)/bin/.installed:
	$(BLENDER_PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/pip install --quiet --upgrade pip
	$(BLENDER_VENV)/bin/pip install --quiet bpy==5.0.1 'pytest>=8'
	touch $@

blender-venv: $(BLENDER_VENV)/bin/.installed

$(BIN)/.installed: pyproject.toml $(wildcard hooks/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -e hooks/nst-w2-loss -e hooks/nst-adam-ema -e hooks/nst-vgg19
	touch $@

demo: $(BIN)/.installed
	$(BIN)/nst image samples/street.jpg --style samples/starry_night.jpg --size 384 \
		-o out/street_starry.png --loss-plot out/street_starry_loss.png --overwrite
	@echo "result: out/street_starry.png (settings: out/street_starry.nst.json, loss curves: out/street_starry_loss.png)"

test: $(BIN)/.installed blender-venv
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/frame_bench.py

clean:
	rm -rf $(VENV) $(BLENDER_VENV) out
