"""Recipes: the schedule's values, validation of every field, single-field changes, and the
report's recipe computing exactly the report's plain SGD (so its runs keep their identities)."""

import copy
import json
import math

import pytest

from keras_cifar.errors import ConfigError, ZooError
from keras_cifar.zoo import BUILTIN_ZOO_PATH, parse_zoo
from keras_cifar.zoo.recipe import (Recipe, Schedule, from_settings, parse_recipe,
                                    with_changes)

from conftest import REPORT_NETWORK_IDS, ZOO


def test_triangle_schedule_at_chosen_steps():
    s = Schedule("triangle", start=0.2, peak=0.23, end=0.07)
    total = 100  # peak at int(0.23 * 100) = 23
    assert s.multiplier(0, total) == pytest.approx(0.2)
    assert s.multiplier(10, total) == pytest.approx(0.2 + 0.8 * 10 / 23)
    assert s.multiplier(23, total) == pytest.approx(1.0)
    assert s.multiplier(50, total) == pytest.approx(1 - 0.93 * 27 / 77)
    assert s.multiplier(100, total) == pytest.approx(0.07)
    assert s.multiplier(150, total) == pytest.approx(0.07)  # past the end: held


def test_triangle_matches_airbench_for_its_own_run_length():
    # airbench93: 11 epochs of 48 steps; its triangle() puts the peak at int(0.23 * 528) = 121
    s = Schedule("triangle", start=0.2, peak=0.23, end=0.07)
    assert s.peak_step(528) == 121
    assert s.multiplier(121, 528) == 1.0
    assert s.multiplier(528, 528) == pytest.approx(0.07)


def test_cosine_schedule_warms_up_then_falls_as_a_half_cosine():
    s = Schedule("cosine", start=0.0, peak=0.1, end=0.0)
    assert s.multiplier(0, 200) == 0.0
    assert s.multiplier(10, 200) == pytest.approx(0.5)
    assert s.multiplier(20, 200) == pytest.approx(1.0)
    assert s.multiplier(110, 200) == pytest.approx(0.5)  # half way down: cos(pi/2)
    assert s.multiplier(200, 200) == pytest.approx(0.0)
    assert Schedule("cosine", peak=0.0, end=0.1).multiplier(0, 50) == pytest.approx(1.0)


def test_constant_schedule_is_one_everywhere():
    assert {Schedule().multiplier(step, 10) for step in (0, 5, 10)} == {1.0}


def test_the_report_recipe_is_plain_and_stays_out_of_run_identities():
    assert ZOO.recipe("report").is_plain
    for network_id in REPORT_NETWORK_IDS:
        assert ZOO.network(network_id).recipe == "report"
        assert "recipe" not in ZOO.network(network_id).to_dict()
    assert not ZOO.recipe("report-augmented").is_plain


def test_settings_round_trip_through_a_run_identity():
    recipe = ZOO.recipe("airbench93")
    settings = json.loads(json.dumps(recipe.settings()))
    assert from_settings(settings).settings() == recipe.settings()


def test_airbench93_recipe_states_airbench_hyperparameters_in_mean_loss_terms():
    r = ZOO.recipe("airbench93")
    # lr 11.5 per 1024 examples, decoupled from momentum 0.85: 11.5 / (1 + 1 / 0.15)
    assert r.train["lr"] == pytest.approx(11.5 / (1 + 1 / (1 - 0.85)))
    assert r.weight_decay * r.train["lr"] == pytest.approx(0.0153 * 1024 / (1024 * (1 + 1 / 0.15)))
    assert (r.nesterov, r.label_smoothing, r.tta) == (True, 0.2, "mirror_translate")
    assert (r.augment.flip, r.augment.translate) == ("alternate", 2)
    assert r.lr_scales == {"batchnorm.beta": 64.0} and r.whiten_bias_epochs == 3
    assert (r.averaging.kind, r.averaging.every, r.averaging.decay) == ("lookahead", 5, 0.95 ** 5)


def test_with_changes_changes_one_field_or_one_part():
    r = ZOO.recipe("airbench93")
    changed = with_changes(r, {"label_smoothing": 0.1, "augment.translate": 4, "tta": "none"})
    assert (changed.label_smoothing, changed.augment.translate, changed.tta) == (0.1, 4, "none")
    assert changed.augment.flip == "alternate" and changed.nesterov
    assert with_changes(Recipe(), {"augment.flip": "random"}).augment.flip == "random"
    off = with_changes(r, {"schedule.kind": "constant"})
    assert off.schedule == Schedule()


@pytest.mark.parametrize("changes, key", [
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"augment.translate": 9}, "augment.translate"),
    ({"schedule.peak": 1.0}, "schedule.peak"),
    ({"schedule.peak": 0}, "schedule.peak"),
    ({"momentum_nesterov": True}, "momentum_nesterov"),
    ({"augment.rotate": 3}, "augment.rotate"),
    ({"lr_scales": {"bn.beta": 2}}, "lr_scales.bn.beta"),
    ({"tta": "mirror-translate"}, "tta"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
])
def test_with_changes_rejects_bad_values_naming_the_key(changes, key):
    with pytest.raises(ConfigError) as info:
        with_changes(ZOO.recipe("airbench93"), changes)
    assert f"key '{key}'" in str(info.value) and "Received:" in str(info.value)


def _raw():
    return json.loads(BUILTIN_ZOO_PATH.read_text())


def _with_recipe_field(recipe_id, key, value):
    raw = _raw()
    entry = next(r for r in raw["recipes"] if r["id"] == recipe_id)
    target = entry
    *path, last = key.split(".")
    for part in path:
        target = target.setdefault(part, {})
    target[last] = value
    return raw


@pytest.mark.parametrize("key, value", [
    ("weight_decay", -0.001),
    ("schedule.peak", 1.5),
    ("schedule.peak", 0.0),
    ("schedule.kind", "linear"),
    ("augment.translate", 12),
    ("augment.flip", "sometimes"),
    ("averaging.decay", 1.0),
    ("whiten_bias_epochs", -1),
    ("nesterov", "yes"),
    ("weight_dacay", 0.1),
    ("train.lr", 0),
    ("train.batchsize", 32),
])
def test_a_bad_recipe_names_the_file_entry_and_key(key, value):
    raw = _with_recipe_field("airbench93", key, value)
    with pytest.raises(ZooError) as info:
        parse_zoo(raw, "zoo.json")
    message = str(info.value)
    assert "zoo.json: recipe 'airbench93'" in message
    assert f"key '{key.replace('batchsize', 'batchsize')}'" in message
    assert "Received:" in message


def test_an_unknown_recipe_key_suggests_the_nearest():
    with pytest.raises(ConfigError, match=r"did you mean 'weight_decay'"):
        parse_recipe({"id": "x", "weight_dacay": 0.1})


def test_a_network_or_experiment_naming_an_unknown_recipe_is_refused():
    raw = _raw()
    raw["networks"][-1]["recipe"] = "airbench39"
    with pytest.raises(ZooError, match=r"network 'airbench94', key 'recipe'.*did you mean 'airbench93'"):
        parse_zoo(raw)
    raw = _raw()
    raw["experiments"][0]["recipe"] = "modrn"
    with pytest.raises(ZooError, match=r"experiment 'mlp-lr0.001', key 'recipe'.*'modern'"):
        parse_zoo(raw)


def test_a_duplicate_recipe_is_refused():
    raw = _raw()
    raw["recipes"].append(copy.deepcopy(raw["recipes"][1]))
    with pytest.raises(ZooError, match=r"recipe 'report-augmented'.*duplicate"):
        parse_zoo(raw)


def test_a_recipe_brings_its_sgd_numbers_to_another_network():
    cnn3 = ZOO.network("cnn3")
    assert ZOO.settings(cnn3) == cnn3.train
    modern = ZOO.settings(cnn3, "modern")
    assert (modern.lr, modern.momentum, modern.batch_size, modern.epochs) == (1.5, 0.85, 1024, 20)
    report = ZOO.settings(ZOO.network("airbench93"), "report")
    assert (report.lr, report.momentum, report.batch_size, report.epochs) == (0.01, 0.9, 64, 11)


def test_the_describe_line_names_every_change():
    text = ZOO.recipe("airbench93").describe()
    for words in ("nesterov", "triangle", "label smoothing 0.2", "alternate flip", "translate 2",
                  "lookahead", "x64 for batchnorm.beta", "whitening init", "TTA"):
        assert words in text
    assert Recipe().describe() == "plain SGD"
    assert math.isclose(ZOO.recipe("modern").weight_decay, 0.0153 / 11.5)
