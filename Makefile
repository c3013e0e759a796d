# Two commands on a fresh machine:
#   make demo   create .venv, install nst-plugin, stylize the samples into out/
#   make test   create .venv, install nst-plugin with its test dependencies, run the tests
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test bench clean

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

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/frame_bench.py

clean:
	rm -rf $(VENV) out
