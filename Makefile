# Two commands on a fresh machine:
#   make demo   create .venv, install nst-plugin, stylize the sample clip into out/street/ and out/street.mp4
#               (keyframe engine, source resolution) and write out/street_compare.jpg
#   make test   create .venv, install nst-plugin with its test dependencies (JAX and PyTorch too), run the
#               tests, then the engine's tests marked "backends" again on JAX and on PyTorch
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

# setuptools' editable-install warnings ("be careful with folders ...") are not the user's to act on
QUIET_BUILD = PYTHONWARNINGS=ignore

$(BIN)/.installed: pyproject.toml $(wildcard hooks/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(QUIET_BUILD) $(BIN)/pip install --quiet -e .
	$(QUIET_BUILD) $(BIN)/pip install --quiet -e hooks/nst-w2-loss -e hooks/nst-adam-ema -e hooks/nst-vgg19
	touch $@

# the tests also run the engine on the JAX and PyTorch backends (tests marked "backends"). TORCH names the
# PyTorch to install: the CPU build 2.13.0 where pip's find-links has it (CI, this project's machines); on a
# machine without it, pip takes PyPI's build of that version (with CUDA: several GB). TORCH= leaves PyTorch out.
TORCH ?= torch==2.13.0

$(BIN)/.installed-test: $(BIN)/.installed
	$(QUIET_BUILD) $(BIN)/pip install --quiet -e '.[test,jax]' $(TORCH)
	touch $@

# the keyframe engine at the source's resolution (384x288), all 40 frames; then frames 1, 21 and 40 of the
# source above the same stylized frames in one picture
demo: $(BIN)/.installed
	$(BIN)/nst video samples/street.avi --style samples/starry_night.jpg --engine keyframes --frames 1-40 \
		-o out/street/ --encode out/street.mp4
	$(BIN)/nst compare samples/street.avi out/street/ -o out/street_compare.jpg
	@echo "frames: out/street/frame_000001.png ... (manifest: out/street/nst_manifest.json); video: out/street.mp4"
	@echo "comparison (source frames above stylized frames): out/street_compare.jpg"

test: $(BIN)/.installed-test blender-venv
	$(BIN)/python -m pytest
	KERAS_BACKEND=jax $(BIN)/python -m pytest -m backends -p no:cacheprovider
	if $(BIN)/python -c "import torch" 2>/dev/null; then \
		KERAS_BACKEND=torch $(BIN)/python -m pytest -m backends -p no:cacheprovider; \
	else echo "PyTorch not installed (TORCH=): the backends tests ran on TensorFlow and JAX only"; fi

bench: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/fidelity_bench.py
	$(BIN)/python benchmarks/drift_bench.py --clip samples/walkers.avi --style samples/baboon.jpg --frames 40
	$(BIN)/python benchmarks/drift_bench.py --clip samples/face.avi --style samples/starry_night.jpg --frames 40
	$(BIN)/python benchmarks/video_bench.py --source samples/face.avi --style samples/baboon.jpg --frames 12 \
		--seed-frames 1 --weights hed --out benchmarks/results/video_face
	$(BIN)/python benchmarks/backend_bench.py
	$(BIN)/python benchmarks/keyframe_bench.py  # needs opencv-doc (vtest.avi, Megamind.avi) or NST_CLIPS

clean:
	rm -rf $(VENV) $(BLENDER_VENV) out
