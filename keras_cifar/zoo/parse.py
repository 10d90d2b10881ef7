"""Read and validate zoo.json into the frozen dataclasses of `keras_cifar.zoo.spec`.

Validation happens here, in pure Python, so that a bad file is reported with its entry and key
before TensorFlow is ever imported, and so that shapes and parameter counts are known without
building a model.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from keras_cifar.errors import ConfigError, ZooError
from keras_cifar.zoo import rules
from keras_cifar.zoo.rules import INITS
from keras_cifar.zoo.recipe import DEFAULT_RECIPE, Recipe, parse_recipe
from keras_cifar.zoo.spec import (ACTIVATIONS, CONV_INITS, ID_PATTERN, INPUT_SHAPE, LAYER_KINDS,
                                  MAX_PARAMS, NUM_CLASSES, PADDINGS, PREPROCESSES, WEIGHTED_KINDS,
                                  _LAYER_KEYS, _TRAIN_KEYS, ExperimentSpec, LayerSpec, NetworkSpec,
                                  OriginalResult, ReportText, TrainSettings, Zoo, nearest)

ZOO_ENV_VAR = "KERAS_CIFAR_ZOO"
BUILTIN_ZOO_PATH = Path(__file__).with_name("zoo.json")


def zoo_path(path: str | os.PathLike | None = None) -> Path:
    """Returns the zoo file to use: `path`, else `$KERAS_CIFAR_ZOO`, else the built-in one."""
    if path is not None:
        return Path(path)
    configured = os.environ.get(ZOO_ENV_VAR)
    if configured:
        return Path(configured)
    return BUILTIN_ZOO_PATH


def load_zoo(path: str | os.PathLike | None = None) -> Zoo:
    """Reads and validates a zoo file.

    Args:
        path: the zoo.json to read; None means `$KERAS_CIFAR_ZOO` or the built-in zoo.

    Returns:
        The validated `Zoo`.

    Raises:
        ZooError: the file is missing, is not JSON, or any entry is invalid; the message names
            the file, the entry and the key.
    """
    path = zoo_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ZooError(
            f"Cannot read the zoo file {path}: {e.strerror or e}. Pass an existing file with "
            f"`zoo_path=PATH` or {ZOO_ENV_VAR}. Received: path={str(path)!r}"
        ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ZooError(
            f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}. "
            "Fix the syntax there (a missing comma or quote is the usual cause)."
        ) from None
    return parse_zoo(raw, path)


def parse_zoo(raw: Any, path: str | os.PathLike = "<zoo>") -> Zoo:
    """Validates an already-parsed zoo document.

    Args:
        raw: the JSON document (a dict with `networks` and `experiments` lists).
        path: where it came from, for messages.

    Returns:
        The validated `Zoo`.

    Raises:
        ZooError: any entry is invalid.
    """
    path = Path(path)
    if not isinstance(raw, dict):
        raise ZooError(
            f"{path}: the top level must be an object with 'networks' and 'experiments'. "
            f"Received: {type(raw).__name__}"
        )
    unknown = set(raw) - {"about", "recipes", "networks", "experiments"}
    if unknown:
        raise ZooError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; expected 'networks', "
            f"'experiments' and optionally 'recipes' and 'about'."
        )
    raw_recipes = raw.get("recipes", [])
    if not isinstance(raw_recipes, list):
        raise ZooError(f"{path}: key 'recipes' must be a list of recipe objects. "
                       f"Received: recipes={raw_recipes!r}")
    recipes: dict[str, Recipe] = {DEFAULT_RECIPE: Recipe()}
    declared: set[str] = set()
    for index, entry in enumerate(raw_recipes):
        recipe = _parse_recipe(entry, index, path)
        if recipe.id in declared:
            raise ZooError(f"{path}: recipe '{recipe.id}' (entry {index}), key 'id': duplicate "
                           f"id. Received: id={recipe.id!r}")
        declared.add(recipe.id)
        recipes[recipe.id] = recipe
    raw_networks = raw.get("networks")
    if not isinstance(raw_networks, list) or not raw_networks:
        raise ZooError(
            f"{path}: key 'networks' must be a non-empty list of network objects. "
            f"Received: networks={raw_networks!r}"
        )
    networks: dict[str, NetworkSpec] = {}
    for index, entry in enumerate(raw_networks):
        spec = _parse_network(entry, index, path, recipes)
        if spec.id in networks:
            raise ZooError(
                f"{path}: network '{spec.id}' (entry {index}), key 'id': duplicate id; "
                "every network needs its own. Received: id=" + repr(spec.id)
            )
        networks[spec.id] = spec

    raw_experiments = raw.get("experiments", [])
    if not isinstance(raw_experiments, list):
        raise ZooError(
            f"{path}: key 'experiments' must be a list. Received: experiments={raw_experiments!r}"
        )
    experiments: dict[str, ExperimentSpec] = {}
    for index, entry in enumerate(raw_experiments):
        exp = _parse_experiment(entry, index, path, networks, recipes)
        if exp.id in experiments:
            raise ZooError(
                f"{path}: experiment '{exp.id}' (entry {index}), key 'id': duplicate id. "
                f"Received: id={exp.id!r}"
            )
        experiments[exp.id] = exp
    return Zoo(path=path, networks=networks, experiments=experiments, recipes=recipes)


class _Where:
    """Formats the location of a problem: file, entry, key."""

    def __init__(self, path: Path, what: str, entry_id: str):
        self.prefix = f"{path}: {what} '{entry_id}'"

    def error(self, key: str, expected: str, received: Any) -> ZooError:
        name = key.rsplit(".", 1)[-1]
        return ZooError(f"{self.prefix}, key '{key}': expected {expected}. Received: {name}={received!r}")


def _entry_id(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
        return entry["id"]
    return f"#{index}"


def _check_keys(entry: dict, allowed: set[str], where: _Where, key_prefix: str = "") -> None:
    for key in entry:
        if key not in allowed:
            close = nearest(key, sorted(allowed))
            hint = f" (did you mean '{close}'?)" if close else ""
            raise where.error(
                f"{key_prefix}{key}", f"one of {sorted(allowed)}{hint}", entry[key]
            )


def _check_id(value: Any, where: _Where) -> None:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise where.error("id", "an id of 1-64 lower-case ASCII letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit (it names folders and files)", value)


def _positive_int(value: Any, key: str, where: _Where) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.error(key, "a positive integer", value)
    return value


def _number(value: Any, key: str, where: _Where, low: float, high: float, *,
            low_inclusive: bool, high_inclusive: bool, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise where.error(key, expected, value)
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        raise where.error(key, expected, value)
    return float(value)


def _flag(value: Any, key: str, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.error(key, "true or false", value)
    return value


def _choice(value: Any, key: str, where: _Where, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise where.error(key, f"one of {list(choices)}", value)
    return value


def _train_fields(raw: Any, where: _Where, key_prefix: str) -> dict:
    """Validates the SGD settings present in `raw` (any of lr, momentum, epochs, batch_size)."""
    if not isinstance(raw, dict):
        raise where.error(key_prefix.rstrip("."), "an object with lr, momentum, epochs, "
                          "batch_size", raw)
    _check_keys(raw, set(_TRAIN_KEYS), where, key_prefix)
    checked = {}
    for key, rule in (("lr", rules.check_lr), ("momentum", rules.check_momentum),
                      ("epochs", rules.check_epochs), ("batch_size", rules.check_batch_size)):
        if key in raw:
            try:
                checked[key] = rule(raw[key])
            except ConfigError as e:
                raise ZooError(f"{where.prefix}, key '{key_prefix}{key}': {e}") from None
    return checked


def parse_train_settings(raw: Any, where: _Where, key_prefix: str,
                         base: dict | None = None) -> TrainSettings:
    """Validates lr, momentum, epochs and batch size (shared by networks and experiments);
    those `raw` leaves out come from `base`, and lr, momentum and epochs must be somewhere."""
    checked = {**(base or {}), **_train_fields(raw, where, key_prefix)}
    for key in ("lr", "momentum", "epochs"):
        if key not in checked:
            raise where.error(f"{key_prefix}{key}", "a value (the key is missing)", None)
    return TrainSettings(**checked)


def _parse_recipe(entry: Any, index: int, path: Path) -> Recipe:
    entry_id = _entry_id(entry, index)
    where = _Where(path, "recipe", entry_id)
    if not isinstance(entry, dict):
        raise ZooError(f"{path}: recipe entry {index} must be an object. Received: {entry!r}")
    _check_id(entry.get("id"), where)
    train = _train_fields(entry.get("train", {}), where, "train.")
    try:
        recipe = parse_recipe({**entry, "train": train})
    except ConfigError as e:
        raise ZooError(f"{where.prefix}, {e}") from None
    return recipe


def _parse_network(entry: Any, index: int, path: Path, recipes: dict) -> NetworkSpec:
    entry_id = _entry_id(entry, index)
    where = _Where(path, "network", entry_id)
    if not isinstance(entry, dict):
        raise ZooError(f"{path}: network entry {index} must be an object. Received: {entry!r}")
    _check_keys(entry, {"id", "title", "layers", "preprocess", "init", "train", "recipe",
                        "source"}, where)
    _check_id(entry.get("id"), where)
    title = entry.get("title", entry["id"])
    if not isinstance(title, str):
        raise where.error("title", "a string", title)
    preprocess = _choice(entry.get("preprocess", "unit"), "preprocess", where, PREPROCESSES)
    init = _choice(entry.get("init", "torch"), "init", where, INITS)
    recipe = _recipe_id(entry.get("recipe", DEFAULT_RECIPE), where, recipes)
    if "train" not in entry and not {"lr", "momentum", "epochs"} <= set(recipes[recipe].train):
        raise where.error("train", "an object with lr, momentum, epochs (the key is missing)", None)
    train = parse_train_settings(entry.get("train", {}), where, "train.",
                                 base=dict(recipes[recipe].train))
    source = entry.get("source")
    if source is not None and not isinstance(source, dict):
        raise where.error("source", "an object naming the repository, commit and file", source)
    raw_layers = entry.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise where.error("layers", "a non-empty list of layer objects", raw_layers)
    layers = _resolve_layers(raw_layers, where)
    params = sum(layer.params for layer in layers)
    if params > MAX_PARAMS:
        raise where.error("layers", f"a network of at most {MAX_PARAMS:,} parameters (the zoo's "
                          f"limit; this one has {params:,})", f"{params:,} parameters")
    return NetworkSpec(
        id=entry["id"], title=title, layers=layers, preprocess=preprocess, train=train, init=init,
        recipe=recipe, source=source,
    )


def _recipe_id(value: Any, where: _Where, recipes: dict) -> str:
    if value not in recipes:
        close = nearest(str(value), list(recipes))
        hint = f" (did you mean '{close}'?)" if close else ""
        raise where.error("recipe", f"the id of a recipe in this zoo{hint}: {', '.join(recipes)}",
                          value)
    return value


def _resolve_layers(raw_layers: list, where: _Where) -> tuple[LayerSpec, ...]:
    shape: tuple[int, ...] = INPUT_SHAPE
    counters: dict[str, int] = {}
    layers = []
    for i, raw in enumerate(raw_layers):
        key = f"layers[{i}]"
        if not isinstance(raw, dict):
            raise where.error(key, "a layer object such as {\"kind\": \"dense\", \"units\": 10}", raw)
        kind = raw.get("kind")
        if kind not in LAYER_KINDS:
            raise where.error(f"{key}.kind", f"one of {list(LAYER_KINDS)}", kind)
        allowed = _LAYER_KEYS[kind]
        _check_keys(raw, {"kind", *allowed}, where, f"{key}.")
        options = {}
        for name, default in allowed.items():
            if name not in raw and default is None and not (kind == "maxpool" and name == "strides"):
                raise where.error(f"{key}.{name}", f"a value for a '{kind}' layer (the key is missing)", None)
            options[name] = raw.get(name, default)
        if kind == "whiten" and any(l["kind"] in WEIGHTED_KINDS for l in raw_layers[:i]):
            raise where.error(f"{key}.kind", "a whitening layer as the first weighted layer (it "
                              "whitens the input images' patches)", kind)
        layer, shape = _resolve_layer(kind, options, shape, where, key)
        counters[kind] = counters.get(kind, 0) + 1
        prefix = {"maxpool": "pool", "batchnorm": "bn", "globalmaxpool": "globalpool",
                  "activation": "act"}.get(kind, kind)
        layers.append(LayerSpec(name=f"{prefix}{counters[kind]}", **layer))
    if shape != (NUM_CLASSES,):
        raise where.error(
            f"layers[{len(raw_layers) - 1}]",
            f"a last layer that outputs the {NUM_CLASSES} class logits "
            "(a dense layer with units 10 after a flatten); the network outputs shape "
            f"{shape}",
            raw_layers[-1],
        )
    return tuple(layers)


def _resolve_layer(kind: str, o: dict, shape: tuple[int, ...], where: _Where, key: str):
    """Checks one layer's options against its input shape; returns its fields and output shape."""
    fan_in = None
    params = 0
    trainable = None  # all of params unless set
    if kind in ("conv", "maxpool", "whiten", "globalmaxpool") and len(shape) != 3:
        raise where.error(f"{key}.kind", f"a layer for a 1-D input; '{kind}' needs an image "
                          f"(it follows a flatten or dense layer, input shape {shape})", kind)
    if kind == "conv":
        filters = _positive_int(o["filters"], f"{key}.filters", where)
        k = _positive_int(o["kernel_size"], f"{key}.kernel_size", where)
        s = _positive_int(o["strides"], f"{key}.strides", where)
        _choice(o["padding"], f"{key}.padding", where, PADDINGS)
        _choice(o["activation"], f"{key}.activation", where, ACTIVATIONS)
        h, w, c = shape
        if o["padding"] == "valid":
            out_hw = [(d - k) // s + 1 if d >= k else 0 for d in (h, w)]
        else:
            out_hw = [math.ceil(d / s) for d in (h, w)]
        if min(out_hw) < 1:
            raise where.error(f"{key}.kernel_size", f"a kernel no larger than its {h}x{w} input "
                              "(the conv stack shrinks the image below 1x1)", k)
        fan_in = k * k * c
        _flag(o["use_bias"], f"{key}.use_bias", where)
        _choice(o["init"], f"{key}.init", where, CONV_INITS)
        if o["init"] == "dirac" and (filters < c or k % 2 == 0):
            raise where.error(f"{key}.init", f"'dirac' only for an odd kernel with at least as "
                              f"many filters as input channels ({c})", o["init"])
        params = fan_in * filters + (filters if o["use_bias"] else 0)
        out = (out_hw[0], out_hw[1], filters)
    elif kind == "whiten":
        k = _positive_int(o["kernel_size"], f"{key}.kernel_size", where)
        _number(o["epsilon"], f"{key}.epsilon", where, 0, 1, low_inclusive=False,
                high_inclusive=True, expected="an epsilon in (0, 1] added to the eigenvalues")
        _positive_int(o["images"], f"{key}.images", where)
        h, w, c = shape
        if k > min(h, w):
            raise where.error(f"{key}.kernel_size", f"a kernel no larger than its {h}x{w} input", k)
        fan_in = k * k * c
        filters = 2 * fan_in  # each eigenvector and its negative
        params = fan_in * filters + filters
        trainable = filters  # the kernel is frozen; the bias trains
        out = (h - k + 1, w - k + 1, filters)
    elif kind == "globalmaxpool":
        out = (shape[-1],)
    elif kind == "activation":
        _choice(o["activation"], f"{key}.activation", where, ACTIVATIONS)
        out = shape
    elif kind == "scale":
        _number(o["factor"], f"{key}.factor", where, -1e6, 1e6, low_inclusive=True,
                high_inclusive=True, expected="a finite factor")
        o["factor"] = float(o["factor"])
        out = shape
    elif kind == "maxpool":
        p = _positive_int(o["pool_size"], f"{key}.pool_size", where)
        s = p if o["strides"] is None else _positive_int(o["strides"], f"{key}.strides", where)
        o["strides"] = s
        h, w, c = shape
        if min(h, w) < p:
            raise where.error(f"{key}.pool_size", f"a pool no larger than its {h}x{w} input "
                              "(the stack shrinks the image below 1x1)", p)
        out = ((h - p) // s + 1, (w - p) // s + 1, c)
    elif kind == "flatten":
        out = (math.prod(shape),)
    elif kind == "dense":
        if len(shape) != 1:
            raise where.error(f"{key}.kind", f"a flatten layer before the first dense layer "
                              f"(its input is the image shape {shape})", kind)
        units = _positive_int(o["units"], f"{key}.units", where)
        _choice(o["activation"], f"{key}.activation", where, ACTIVATIONS)
        _flag(o["use_bias"], f"{key}.use_bias", where)
        fan_in = shape[0]
        params = fan_in * units + (units if o["use_bias"] else 0)
        out = (units,)
    elif kind == "dropout":
        _number(o["rate"], f"{key}.rate", where, 0, 1, low_inclusive=True, high_inclusive=False,
                expected="a rate in [0, 1)")
        out = shape
    else:  # batchnorm: (gamma,) beta, moving mean, moving variance per channel.
        _number(o["momentum"], f"{key}.momentum", where, 0, 1, low_inclusive=True,
                high_inclusive=False, expected="a moving-average momentum in [0, 1)")
        _number(o["epsilon"], f"{key}.epsilon", where, 0, 1, low_inclusive=False,
                high_inclusive=True, expected="an epsilon in (0, 1]")
        _flag(o["scale"], f"{key}.scale", where)
        per_channel = 2 if o["scale"] else 1
        params = (2 + per_channel) * shape[-1]
        trainable = per_channel * shape[-1]
        out = shape
    fields = dict(kind=kind, options=o, input_shape=shape, output_shape=out, fan_in=fan_in,
                  params=params, trainable_params=params if trainable is None else trainable)
    return fields, out


def _optional_number(raw: dict, key: str, where: _Where, key_prefix: str, *, low: float,
                     high: float, high_inclusive: bool, expected: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    return _number(value, f"{key_prefix}{key}", where, low, high, low_inclusive=True,
                   high_inclusive=high_inclusive, expected=expected)


def _optional_string(raw: dict, key: str, where: _Where, key_prefix: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise where.error(f"{key_prefix}{key}", "a string or null", value)
    return value


def _parse_original(raw: Any, where: _Where) -> OriginalResult | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise where.error("original", "an object with test_accuracy, test_loss, repository, "
                          "commit, notebook", raw)
    _check_keys(raw, {"test_accuracy", "test_loss", "repository", "commit", "notebook"}, where,
                "original.")
    return OriginalResult(
        test_accuracy=_optional_number(raw, "test_accuracy", where, "original.", low=0, high=1,
                                       high_inclusive=True, expected="a fraction in [0, 1] or null"),
        test_loss=_optional_number(raw, "test_loss", where, "original.", low=0, high=math.inf,
                                   high_inclusive=False, expected="a non-negative number or null"),
        **{key: _optional_string(raw, key, where, "original.")
           for key in ("repository", "commit", "notebook")},
    )


def _parse_report_text(raw: Any, where: _Where) -> ReportText:
    if raw is None:
        return ReportText()
    if not isinstance(raw, dict):
        raise where.error("report_text", "an object with words, test_accuracy, test_loss and "
                          "the settings the text states (lr, momentum, epochs)", raw)
    _check_keys(raw, {"test_accuracy", "test_loss", "words", *_TRAIN_KEYS} - {"batch_size"},
                where, "report_text.")
    prefix = "report_text."
    epochs = raw.get("epochs")
    return ReportText(
        test_accuracy=_optional_number(raw, "test_accuracy", where, prefix, low=0, high=1,
                                       high_inclusive=True, expected="a fraction in [0, 1] or null"),
        test_loss=_optional_number(raw, "test_loss", where, prefix, low=0, high=math.inf,
                                   high_inclusive=False, expected="a non-negative number or null"),
        words=_optional_string(raw, "words", where, prefix),
        lr=_optional_number(raw, "lr", where, prefix, low=0, high=math.inf, high_inclusive=False,
                            expected="a learning rate > 0 or null"),
        momentum=_optional_number(raw, "momentum", where, prefix, low=0, high=1,
                                  high_inclusive=False, expected="a momentum in [0, 1) or null"),
        epochs=None if epochs is None else _positive_int(epochs, f"{prefix}epochs", where),
    )


def _parse_experiment(entry: Any, index: int, path: Path, networks: dict,
                      recipes: dict) -> ExperimentSpec:
    entry_id = _entry_id(entry, index)
    where = _Where(path, "experiment", entry_id)
    if not isinstance(entry, dict):
        raise ZooError(f"{path}: experiment entry {index} must be an object. Received: {entry!r}")
    _check_keys(entry, {"id", "network", "original", "report_text", "recipe", "group", "title",
                        *_TRAIN_KEYS}, where)
    _check_id(entry.get("id"), where)
    network = entry.get("network")
    if network not in networks:
        close = nearest(str(network), list(networks))
        hint = f" (did you mean '{close}'?)" if close else ""
        raise where.error("network", f"the id of a network in this zoo{hint}: "
                          f"{', '.join(networks)}", network)
    spec = networks[network]
    recipe = _recipe_id(entry.get("recipe", spec.recipe), where, recipes)
    zoo = Zoo(path=path, networks=networks, recipes=recipes)
    base = zoo.settings(spec, recipe)
    train = parse_train_settings({k: entry[k] for k in _TRAIN_KEYS if k in entry}, where, "",
                                 base={k: getattr(base, k) for k in _TRAIN_KEYS})
    for key in ("group", "title"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise where.error(key, "a string", entry[key])
    group = entry.get("group")
    if group is not None and not ID_PATTERN.fullmatch(group):
        raise where.error("group", "a name of lower-case ASCII letters, digits, '.', '_' or '-'",
                          group)
    return ExperimentSpec(
        id=entry["id"], network=network, train=train,
        original=_parse_original(entry.get("original"), where),
        report_text=_parse_report_text(entry.get("report_text"), where),
        recipe=recipe, recipe_settings=zoo.recipe(recipe).identity_json(), group=group,
        title=entry.get("title"),
    )


def list_networks(path: str | os.PathLike | None = None) -> list[NetworkSpec]:
    """Returns every network of the zoo, in file order.

    Args:
        path: the zoo file; None means `$KERAS_CIFAR_ZOO` or the built-in zoo.
    """
    return list(load_zoo(path).networks.values())


def get_network(name: str, path: str | os.PathLike | None = None) -> NetworkSpec:
    """Returns one network of the zoo by id.

    Raises:
        ZooError: the zoo is invalid or has no such network (the message lists the known ids).
    """
    return load_zoo(path).network(name)


def parse_network(entry: dict, path: str | os.PathLike = "<network>") -> NetworkSpec:
    """One network entry (as zoo.json, or a run's identity, writes it) as a NetworkSpec.

    Raises:
        ZooError: the entry is not a valid network.
    """
    zoo = parse_zoo({"networks": [entry], "experiments": []}, path)
    return next(iter(zoo.networks.values()))
