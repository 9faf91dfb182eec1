# Set-up, pipeline and test entry points; `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Rules call `python -m hmfs` and `snakemake`: the venv's, first on PATH.
SNAKEMAKE := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake
CORES ?= all
CONFIG ?= workflow/config.synthetic.yaml

.PHONY: venv test synthetic fold report status bench gpu-check clean-venv

# The virtual environment, re-made when requirements.txt or pyproject.toml change. pip compiles the
# bytecode of every installed file on one core (torch's CUDA build: about 40 s here); compileall
# does the same on every core afterwards (one file of torch's test helpers is Python 3.12 syntax and
# makes it exit 1: that only leaves it uncompiled).
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c "import sysconfig; print(sysconfig.get_path('purelib'))") > /dev/null || true
	touch $@

venv: $(BIN)/.installed

# As root on Debian/Ubuntu the SLURM tests bring up a one-node SLURM (tests/workflow/slurm_cluster.sh); elsewhere they
# skip, and -rs prints why (with CI=true they fail instead). Three workers take whole test files each
# (pytest-xdist; tests/conftest.py starts the longest files first), each with one torch thread: on two
# cores the third worker runs while the SLURM tests wait for their jobs (measured: docs/speed.md).
test: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -rs --durations=15 -n 3 --dist loadfile --no-loadscope-reorder

# The whole pipeline on the embedded synthetic benchmark: data, pretraining, training, evaluation,
# Tables 1-5, figures and report.html.
synthetic: venv
	$(SNAKEMAKE) --configfile $(CONFIG) --cores $(CORES)

# One run again from scratch (its saved training state is deleted), then its evaluations and the
# tables, figures and report that read them:
#   make fold RUN=coco/resnet18/hm/fold1/seed0 [CONFIG=config.yaml]
fold: venv
	@test -n "$(RUN)" || { echo "usage: make fold RUN=<benchmark>/<backbone>/<variant>/<fold>/seed<k> [CONFIG=...]"; exit 2; }
	out=$$($(BIN)/python -c "import yaml; print(yaml.safe_load(open('$(CONFIG)'))['output_dir'])") && \
	rm -rf "$$out/.state/$(RUN)" && \
	$(SNAKEMAKE) --configfile $(CONFIG) --cores $(CORES) --forcerun "$$out/$(RUN)/best.pt"

report: venv
	$(SNAKEMAKE) --configfile $(CONFIG) report.html

# Where the grid of CONFIG stands (reads files only: works on a head node while SLURM runs the jobs);
# WATCH=60 refreshes every minute.
status: venv
	$(BIN)/python -m hmfs status --config $(CONFIG) $(if $(WATCH),--watch $(WATCH))

bench: venv
	$(BIN)/python -m hmfs bench --backbone resnet50 --masking hm --img-size 400

# On a machine with a GPU (sized for under 8 minutes; not yet run on one): FM/HM x ResNet-50/101 at 400 px in fp32, bf16 and fp16,
# peak memory, the loader's episodes/s, a 2-GPU epoch where two exist; then the paper grid's plan on them.
GPU_CHECK ?= results/gpu_check.json
gpu-check: venv
	$(BIN)/python -m hmfs gpu-check --device cuda --out $(GPU_CHECK)
	$(BIN)/python -m hmfs plan --bench $(GPU_CHECK)

clean-venv:
	rm -rf $(VENV)
