import glob
import os

import pytest
from hydra.utils import instantiate

from conftest import CONF_DIR, compose_cfg, rows_in, run_cli
from experiments.config import validate
from experiments.errors import UserError
from compression.specs import specs_of
from experiments.models import build_model
from experiments.models.state import param_counts


def _counts(name):
    model = build_model({"_target_": f"experiments.models.lenet.{name}"}, {})
    return param_counts(model, specs_of(model))

EXPERIMENTS = sorted(os.path.basename(p)[:-5] for p in glob.glob(f"{CONF_DIR}/experiment/*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_validates_and_instantiates(experiment, tmp_path):
    cfg = compose_cfg([f"+experiment={experiment}"], tmp_path)
    conf = validate(cfg)
    assert conf.experiment == experiment
    dm = instantiate(cfg.data)
    assert dm.name == cfg.data.name
    model = build_model(conf.model, dict(num_classes=dm.num_classes, in_channels=dm.in_channels,
                                         image_size=dm.image_size))
    assert param_counts(model, specs_of(model))["weights"] > 0


def test_plus_experiment_form_not_in_defaults(tmp_path):
    # `experiment` is not in the defaults list: `experiment=lenet300` (without +) is rejected by Hydra
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_cfg(["experiment=lenet300"], tmp_path)


@pytest.mark.parametrize("override,key", [
    ("dense.epochs=-1", "dense.epochs"),
    ("+experiment=lenet300 prune.density.ip1=1.5", "prune.density.ip1"),
    ("+experiment=lenet300 quantize.bits.fc=17", "quantize.bits.fc"),
    ("+experiment=lenet300 encode.index_bits.fc=0", "encode.index_bits.fc"),
    ("+experiment=lenet300 quantize.quantizer.init=kmeans++", "quantize.quantizer"),
    ("+experiment=lenet300 +quantize.quantizer.inti=random", "quantize.quantizer.inti"),
    ("+experiment=lenet300 +prune.density.fc=1.5", "prune.density.fc"),
])
def test_impossible_values_fail_naming_the_key(override, key, tmp_path):
    from experiments.plugins import build_all

    cfg = compose_cfg(override.split(), tmp_path)
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        build_all(validate(cfg))


def test_typo_key_fails_at_compose(tmp_path):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="epoch"):
        compose_cfg(["dense.epoch=3"], tmp_path)


def test_lenet_param_counts():
    c300 = _counts("LeNet300")
    assert c300["layers"] == {"ip1": {"weights": 235200, "biases": 300}, "ip2": {"weights": 30000, "biases": 100},
                              "ip3": {"weights": 1000, "biases": 10}}
    assert c300["weights"] == 266200 and c300["biases"] == 410
    c5 = _counts("LeNet5")
    assert [v["weights"] for v in c5["layers"].values()] == [500, 25000, 400000, 5000]
    assert c5["weights"] == 430500 and c5["biases"] == 580


def test_cli_bad_value_exits_nonzero_names_key_writes_no_row(tmp_path):
    p = run_cli(["+experiment=lenet300", "data=mnist_sample", "prune.density.ip1=1.5"], tmp_path)
    assert p.returncode != 0
    assert "prune.density.ip1" in p.stderr
    assert "Traceback" not in p.stderr
    assert rows_in(tmp_path) == []


def test_cli_unknown_layer_name_fails_before_training(tmp_path):
    p = run_cli(["+experiment=lenet300", "data=mnist_sample", "+prune.density.ip9=0.5"], tmp_path)
    assert p.returncode == 2 and "ip9" in p.stderr
    assert rows_in(tmp_path) == []


def test_cli_missing_mnist_offline_clear_error_no_row(tmp_path):
    p = run_cli(["data=mnist", f"data.root={tmp_path / 'nothing'}", "data.download=false"], tmp_path, timeout=60)
    assert p.returncode == 2
    assert "idx files" in p.stderr and "data.root" in p.stderr
    assert rows_in(tmp_path) == []
    assert not (tmp_path / "nothing").exists()
