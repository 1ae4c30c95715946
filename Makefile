# Two commands do everything from a fresh clone (Python >= 3.11 on PATH):
#   make demo   the main job
#   make test   export check, lint, unit tests, every chapter (and its solutions) through nbval
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COLAB_PYTHON ?= python3.11
COLAB_VENV ?= .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
MOOG_PRESET ?= tiny
export MOOG_PRESET
# Tests, chapters and their kernels compile the same small programs again and again:
# JAX's persistent compilation cache compiles each once per checkout (safe to delete).
JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache
JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0
JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES ?= 0
export JAX_COMPILATION_CACHE_DIR JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES

.PHONY: install export check-export api lint unit chapters test test-colab demo executed clean

# --compile-bytecode: every test process, notebook kernel and subprocess imports about
# 1,600 modules; without their .pyc files (uv writes none by default, and environments
# that set PYTHONDONTWRITEBYTECODE never cache them) each start compiles them again (~5 s).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --compile-bytecode --python $(PY) -e ".[dev,video]"
	touch $(STAMP)

install: $(STAMP)

export: install  ## write moog_lib/ and notebooks/ from chapters/
	$(PY) tools/export.py

check-export: install  ## moog_lib/ and notebooks/ agree with the chapters, docs/api/ with moog_lib
	$(PY) tools/export.py --check
	$(PY) tools/api_reference.py --check

api: install  ## write docs/api/: pdoc's HTML reference of moog_lib, from its docstrings
	$(PY) tools/api_reference.py

lint: install
	$(VENV)/bin/ruff check tools tests benchmarks chapters moog_lib

# Tests and chapters compile hundreds of small programs and run each briefly, so compiling
# dominates: XLA's CPU backend at optimisation level 0 compiles them 20-40 % faster
# (measured: tests/test_decoder.py + test_model.py 93 -> 56 s, test_train.py +
# test_readouts.py 432 -> 346 s, one core). Same results; `make demo`, benchmarks and the
# chapters run by hand keep the default.
TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0

# Two xdist workers: the machine CI runs on has two cores. Unit tests are spread one
# by one; a chapter's cells share one kernel, so chapters go whole to a worker.
WORKERS ?= 2

unit: install
	XLA_FLAGS="$(TEST_XLA_FLAGS)" $(PY) -m pytest tests -n $(WORKERS) --dist load --durations=15

chapters: install  ## every chapter under nbval on the tiny preset, with per-chapter runtimes
	MOOG_PRESET=tiny XLA_FLAGS="$(TEST_XLA_FLAGS)" $(PY) -m pytest --nbval-lax --nbval-current-env chapters/ \
		-p no:cacheprovider -n $(WORKERS) --dist loadfile

test: check-export lint unit chapters

# The unit tests under the versions Colab's TPU runtime preinstalls, leaving out the
# tests marked `slow` (long trainings, renders, subprocess meshes) that exercise no
# more library API than the fast ones do, the tests of the repository's own tooling and
# error messages (exporter, API reference, chapter layout, environment files, bad inputs), and the
# modules built only from APIs the remaining tests already exercise under the pins
# (the baselines, the Ego4D variant and the shipped weights are NNX modules loaded and
# trained like MooG; viz is matplotlib over MooG's outputs).
COLAB_SKIP := $(addprefix --ignore=tests/,test_export.py test_api_reference.py test_chapters.py test_environment.py \
	test_bad_inputs.py test_baselines.py test_pretrained.py test_shipped.py test_viz.py)
$(COLAB_STAMP): pyproject.toml constraints/colab-tpu.txt
	test -x $(COLAB_VENV)/bin/python || $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(COLAB_VENV)/bin/uv pip install --compile-bytecode --python $(COLAB_VENV)/bin/python \
		-c constraints/colab-tpu.txt -e ".[dev]"
	touch $(COLAB_STAMP)

# The chapters whose code leans on what changes between versions: NNX modules, split/merge
# and scan (03), the grain pipeline (05), optax, orbax checkpoints and the NNX optimiser (06).
COLAB_CHAPTERS ?= chapters/03_model.py chapters/05_data.py chapters/06_pretraining.py

test-colab: $(COLAB_STAMP)
	$(COLAB_VENV)/bin/python -c "import jax, flax; print('colab pins: jax', jax.__version__, 'flax', flax.__version__)"
	XLA_FLAGS="$(TEST_XLA_FLAGS)" $(COLAB_VENV)/bin/python -m pytest tests -m "not slow" $(COLAB_SKIP) \
		-n $(WORKERS) --dist load
	MOOG_PRESET=tiny XLA_FLAGS="$(TEST_XLA_FLAGS)" $(COLAB_VENV)/bin/python -m pytest --nbval-lax --nbval-current-env \
		$(COLAB_CHAPTERS) -p no:cacheprovider -n $(WORKERS) --dist loadfile

demo: install  ## train the cpu preset on rendered clips, then write runs/demo/ (curves, video, summary)
	$(VENV)/bin/moog demo --preset cpu --workdir runs/cpu --out runs/demo

executed: install  ## run every chapter (MOOG_PRESET) and keep the executed notebooks in runs/chapters/
	$(PY) tools/run_chapters.py --out runs/chapters

clean:
	rm -rf $(VENV) $(COLAB_VENV) runs .pytest_cache .jax_cache
