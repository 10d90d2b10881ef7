"""Training recipes: everything a run sets beyond the network and SGD's four numbers.

A recipe is declared in zoo.json's `recipes` list and validated by `parse_recipe` (Pure Python,
no TensorFlow). The report's experiments use `report`, the plain constant-lr SGD of the original
notebooks; every field's default is the report's, so a recipe states only what it changes.

Conventions, chosen so that a recipe reads the same on any batch size:
- `lr` applies to the batch's *mean* loss (Keras' convention).
- `weight_decay` is an L2 term coupled into the gradient, as `torch.optim.SGD(weight_decay=)`,
  and flows through the momentum: each step adds `lr * weight_decay * w` to the gradient step.
  It is not multiplied by a variable's `lr_scales` factor (airbench's convention).
- The schedule multiplies `lr` per step; `peak` is the fraction of all steps where it reaches 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from keras_cifar.errors import ConfigError

SCHEDULES = ("constant", "triangle", "cosine")
FLIPS = ("none", "random", "alternate")
TTA_LEVELS = ("none", "mirror", "mirror_translate")
AVERAGINGS = ("none", "lookahead", "ema")
# Variables whose learning rate a recipe may scale: '<layer kind>.<weight name>'.
LR_SCALE_KEYS = ("conv.kernel", "conv.bias", "dense.kernel", "dense.bias", "batchnorm.gamma",
                 "batchnorm.beta", "whiten.bias")
MAX_TRANSLATE = 8
DEFAULT_RECIPE = "report"


@dataclass(frozen=True)
class Schedule:
    """A learning-rate multiplier per step.

    `constant`: 1 throughout (the report's). `triangle`: linear from `start` to 1 at `peak` of
    the steps, then linear to `end` at the last step (airbench). `cosine`: linear warm-up from
    `start` to 1 over the first `peak` of the steps, then a half cosine down to `end`.
    """

    kind: str = "constant"
    start: float = 1.0
    peak: float = 0.0
    end: float = 1.0

    def peak_step(self, total_steps: int) -> int:
        """The step where the multiplier is 1, as airbench rounds it (down)."""
        return int(self.peak * total_steps)

    def multiplier(self, step: int, total_steps: int) -> float:
        """The multiplier at `step` (0 = the first update) of `total_steps`; pure Python, the
        reference the Keras schedule is tested against."""
        if self.kind == "constant":
            return 1.0
        step = min(max(step, 0), total_steps)
        peak = self.peak_step(total_steps)
        if step < peak:
            return self.start + (1.0 - self.start) * step / peak
        fraction = (step - peak) / max(total_steps - peak, 1)
        if self.kind == "triangle":
            return 1.0 + (self.end - 1.0) * fraction
        return self.end + (1.0 - self.end) * 0.5 * (1.0 + math.cos(math.pi * fraction))


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation, applied per batch in the tf.data pipeline.

    `flip`: `none`, `random` (each image, each epoch, with probability 1/2) or `alternate`
    (a random half in even epochs, the other half in odd ones: airbench's). `translate`: shift
    by up to this many pixels each way, reflect-padded. `cutout`: blank a square of this side.
    """

    flip: str = "none"
    translate: int = 0
    cutout: int = 0

    @property
    def active(self) -> bool:
        return self.flip != "none" or self.translate > 0 or self.cutout > 0


@dataclass(frozen=True)
class Averaging:
    """Weight averaging. Every `every` steps the average moves toward the weights with
    `decay * (step / total_steps) ** power`; `lookahead` then resets the weights to it (airbench),
    `ema` keeps it aside. Either way the trained model is the average."""

    kind: str = "none"
    every: int = 5
    decay: float = 0.95 ** 5
    power: float = 3.0


@dataclass(frozen=True)
class Recipe:
    """A validated training recipe (see the module docstring for its conventions).

    Attributes:
        id, title: its name and a human title.
        train: the SGD numbers it sets (`lr`, `momentum`, `epochs`, `batch_size`), or fewer;
            the rest come from the network.
        nesterov, weight_decay, schedule, label_smoothing, augment: the optimisation.
        preprocess: the input normalisation, or None for the network's own.
        tta: test-time augmentation of the final evaluation: `none`, `mirror`,
            `mirror_translate` (airbench's level 2).
        averaging: lookahead or EMA of the weights.
        lr_scales: learning-rate factors per kind of variable (`batchnorm.beta`: 64).
        whiten_init: initialise a network's whitening layer from the training images' patch
            covariance before training; False leaves its frozen kernel at its random init.
        whiten_bias_epochs: train the whitening layer's bias this many epochs, then freeze it;
            None trains it throughout.
        source: where the recipe comes from (repository, commit, file), or None.
    """

    id: str = DEFAULT_RECIPE
    title: str = "The report's: constant-lr SGD with momentum, no augmentation"
    train: Mapping[str, Any] = field(default_factory=dict)
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: Schedule = Schedule()
    label_smoothing: float = 0.0
    augment: Augment = Augment()
    preprocess: str | None = None
    tta: str = "none"
    averaging: Averaging = Averaging()
    lr_scales: Mapping[str, float] = field(default_factory=dict)
    whiten_init: bool = False
    whiten_bias_epochs: int | None = None
    source: Mapping[str, Any] | None = None

    # Fields that say what a run computes; id, title, train (kept in the run's own settings)
    # and source are names and citations.
    TRAINING_FIELDS = ("nesterov", "weight_decay", "schedule", "label_smoothing", "augment",
                       "preprocess", "tta", "averaging", "lr_scales", "whiten_init",
                       "whiten_bias_epochs")

    @property
    def is_plain(self) -> bool:
        """Whether it computes exactly the report's plain SGD (every field at its default)."""
        default = Recipe()
        return all(getattr(self, f) == getattr(default, f) for f in self.TRAINING_FIELDS)

    def settings(self) -> dict[str, Any]:
        """The fields that change what a run computes, as JSON (the run identity's `recipe`)."""
        out = {}
        for name in self.TRAINING_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (Schedule, Augment, Averaging)):
                value = {f.name: getattr(value, f.name) for f in fields(value)}
            elif isinstance(value, Mapping):
                value = dict(sorted(value.items()))
            out[name] = value
        return out

    def identity_json(self) -> str | None:
        """`settings()` as a run identity records them (`settings_json`), None when plain."""
        return None if self.is_plain else settings_json(self.settings())

    def describe(self) -> str:
        """One line of what differs from the report's recipe, e.g. `nesterov, wd 0.0013, ...`."""
        parts = []
        if self.nesterov:
            parts.append("nesterov")
        if self.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}")
        if self.schedule.kind != "constant":
            s = self.schedule
            parts.append(f"{s.kind} lr ({s.start:g} -> 1 at {s.peak:g} -> {s.end:g})")
        if self.label_smoothing:
            parts.append(f"label smoothing {self.label_smoothing:g}")
        a = self.augment
        if a.flip != "none":
            parts.append(f"{a.flip} flip")
        if a.translate:
            parts.append(f"translate {a.translate}")
        if a.cutout:
            parts.append(f"cutout {a.cutout}")
        if self.preprocess:
            parts.append(f"{self.preprocess} inputs")
        if self.averaging.kind != "none":
            parts.append(f"{self.averaging.kind} every {self.averaging.every}")
        for key, scale in sorted(self.lr_scales.items()):
            parts.append(f"lr x{scale:g} for {key}")
        if self.whiten_init:
            parts.append("whitening init")
        if self.whiten_bias_epochs is not None:
            parts.append(f"whitening bias frozen after {self.whiten_bias_epochs} epochs")
        if self.tta != "none":
            parts.append(f"TTA {self.tta}")
        return ", ".join(parts) or "plain SGD"

    def to_dict(self) -> dict[str, Any]:
        """The recipe as zoo.json writes it (defaults included)."""
        out = {"id": self.id, "title": self.title, "train": dict(self.train), **self.settings()}
        if self.source is not None:
            out["source"] = dict(self.source)
        return out


RECIPE_KEYS = {"id", "title", "train", "source", *Recipe.TRAINING_FIELDS}
_PART_KEYS = {
    "schedule": {f.name for f in fields(Schedule)},
    "augment": {f.name for f in fields(Augment)},
    "averaging": {f.name for f in fields(Averaging)},
}


def _fail(field_name: str, expected: str, received: Any) -> ConfigError:
    name = field_name.rsplit(".", 1)[-1]
    return ConfigError(f"key '{field_name}': expected {expected}. Received: {name}={received!r}")


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _number(raw: Mapping, key: str, prefix: str, default, low, high, *, low_open=False,
            high_open=False, expected: str) -> float:
    value = raw.get(key, default)
    if not _is_number(value):
        raise _fail(prefix + key, expected, value)
    if (value <= low if low_open else value < low) or (value >= high if high_open else value > high):
        raise _fail(prefix + key, expected, value)
    return float(value)


def _integer(raw: Mapping, key: str, prefix: str, default, low, high, expected: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(prefix + key, expected, value)
    return value


def _choice(raw: Mapping, key: str, prefix: str, default, choices) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise _fail(prefix + key, f"one of {list(choices)}", value)
    return value


def _object(raw: Any, key: str) -> Mapping:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _fail(key, f"an object with {sorted(_PART_KEYS[key])}", raw)
    unknown = sorted(set(raw) - _PART_KEYS[key])
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", f"one of {sorted(_PART_KEYS[key])}", raw[unknown[0]])
    return raw


def parse_schedule(raw: Any) -> Schedule:
    """Validates a `schedule` object."""
    raw = _object(raw, "schedule")
    kind = _choice(raw, "kind", "schedule.", "constant", SCHEDULES)
    if kind == "constant":
        extra = sorted(set(raw) - {"kind"})
        if extra:
            raise _fail(f"schedule.{extra[0]}", "no other key for a 'constant' schedule",
                        raw[extra[0]])
        return Schedule()
    start = _number(raw, "start", "schedule.", 0.0, 0, math.inf,
                    expected="a multiplier >= 0 for the first step")
    if kind == "triangle":
        peak = _number(raw, "peak", "schedule.", 0.5, 0, 1, low_open=True, high_open=True,
                       expected="the fraction of the steps where the lr peaks, in (0, 1)")
    else:
        peak = _number(raw, "peak", "schedule.", 0.0, 0, 1, high_open=True,
                       expected="the warm-up's fraction of the steps, in [0, 1)")
    end = _number(raw, "end", "schedule.", 0.0, 0, math.inf,
                  expected="a multiplier >= 0 for the last step")
    return Schedule(kind=kind, start=start, peak=peak, end=end)


def parse_augment(raw: Any) -> Augment:
    """Validates an `augment` object."""
    raw = _object(raw, "augment")
    return Augment(
        flip=_choice(raw, "flip", "augment.", "none", FLIPS),
        translate=_integer(raw, "translate", "augment.", 0, 0, MAX_TRANSLATE,
                           f"an integer number of pixels in [0, {MAX_TRANSLATE}]"),
        cutout=_integer(raw, "cutout", "augment.", 0, 0, 32,
                        "the side of the blanked square in pixels, in [0, 32]"),
    )


def parse_averaging(raw: Any) -> Averaging:
    """Validates an `averaging` object."""
    raw = _object(raw, "averaging")
    kind = _choice(raw, "kind", "averaging.", "none", AVERAGINGS)
    if kind == "none":
        return Averaging()
    return Averaging(
        kind=kind,
        every=_integer(raw, "every", "averaging.", 5, 1, 10**6, "a number of steps >= 1"),
        decay=_number(raw, "decay", "averaging.", 0.95 ** 5, 0, 1, high_open=True,
                      expected="a decay in [0, 1)"),
        power=_number(raw, "power", "averaging.", 3.0, 0, 100, expected="a power in [0, 100]"),
    )


def parse_recipe_fields(raw: Mapping) -> dict[str, Any]:
    """Validates the recipe fields present in `raw` (not id/title/train/source); returns them
    as Recipe field values, nested objects completed with their own defaults.

    Raises:
        ConfigError: a field breaks its rule; the message names the key.
    """
    out: dict[str, Any] = {}
    for name, parse in (("schedule", parse_schedule), ("augment", parse_augment),
                        ("averaging", parse_averaging)):
        if name in raw:
            out[name] = parse(raw[name])
    for flag in ("nesterov", "whiten_init"):
        if flag in raw:
            if not isinstance(raw[flag], bool):
                raise _fail(flag, "true or false", raw[flag])
            out[flag] = raw[flag]
    if "weight_decay" in raw:
        out["weight_decay"] = _number(raw, "weight_decay", "", 0.0, 0, 1,
                                      expected="an L2 coefficient in [0, 1]")
    if "label_smoothing" in raw:
        out["label_smoothing"] = _number(raw, "label_smoothing", "", 0.0, 0, 1, high_open=True,
                                         expected="a smoothing in [0, 1)")
    if "preprocess" in raw:
        from keras_cifar.zoo.spec import PREPROCESSES

        value = raw["preprocess"]
        if value is not None and value not in PREPROCESSES:
            raise _fail("preprocess", f"null (the network's) or one of {list(PREPROCESSES)}", value)
        out["preprocess"] = value
    if "tta" in raw:
        out["tta"] = _choice(raw, "tta", "", "none", TTA_LEVELS)
    if "lr_scales" in raw:
        scales = raw["lr_scales"]
        if not isinstance(scales, Mapping):
            raise _fail("lr_scales", f"an object mapping some of {list(LR_SCALE_KEYS)} to a "
                        "factor", scales)
        for key, value in scales.items():
            if key not in LR_SCALE_KEYS:
                raise _fail(f"lr_scales.{key}", f"one of {list(LR_SCALE_KEYS)}", value)
            _number(scales, key, "lr_scales.", 1.0, 0, 1e6, low_open=True,
                    expected="a learning-rate factor > 0")
        out["lr_scales"] = {k: float(v) for k, v in sorted(scales.items())}
    if "whiten_bias_epochs" in raw:
        value = raw["whiten_bias_epochs"]
        if value is not None:
            value = _integer(raw, "whiten_bias_epochs", "", None, 0, 10**6,
                             "null (train it throughout) or a number of epochs >= 0")
        out["whiten_bias_epochs"] = value
    return out


def parse_recipe(raw: Any) -> Recipe:
    """Validates a zoo.json recipe object (the caller checks `id`, `train` and `source`).

    Raises:
        ConfigError: an unknown key or a field breaking its rule, naming the key.
    """
    if not isinstance(raw, Mapping):
        raise _fail("recipe", "an object", raw)
    unknown = sorted(set(raw) - RECIPE_KEYS)
    if unknown:
        from keras_cifar.zoo.spec import nearest  # spec imports this module

        close = nearest(unknown[0], sorted(RECIPE_KEYS))
        hint = f" (did you mean '{close}'?)" if close else ""
        raise _fail(unknown[0], f"one of {sorted(RECIPE_KEYS)}{hint}", raw[unknown[0]])
    title = raw.get("title", raw.get("id", DEFAULT_RECIPE))
    if not isinstance(title, str):
        raise _fail("title", "a string", title)
    source = raw.get("source")
    if source is not None and not isinstance(source, Mapping):
        raise _fail("source", "an object naming the repository, commit and file", source)
    return Recipe(id=raw.get("id", DEFAULT_RECIPE), title=title, train=dict(raw.get("train") or {}),
                  source=source, **parse_recipe_fields(raw))


def with_changes(recipe: Recipe, changes: Mapping[str, Any]) -> Recipe:
    """`recipe` with single fields changed, e.g. `{"label_smoothing": 0.1}` or
    `{"augment.translate": 4}` (dotted keys change one part of a nested field).

    Raises:
        ConfigError: an unknown field or a value breaking its rule.
    """
    import dataclasses

    raw: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, tail = key.partition(".")
        if tail:
            if head not in _PART_KEYS:
                raise _fail(key, f"a field of one of {sorted(_PART_KEYS)} (e.g. augment.translate)",
                            value)
            raw.setdefault(head, {})[tail] = value
        else:
            raw[key] = value
    unknown = sorted(set(raw) - set(Recipe.TRAINING_FIELDS))
    if unknown:
        raise _fail(unknown[0], f"one of {list(Recipe.TRAINING_FIELDS)}", raw[unknown[0]])
    for head in _PART_KEYS:
        change = raw.get(head)
        if isinstance(change, Mapping) and change.get("kind") not in ("constant", "none"):
            current = getattr(recipe, head)
            raw[head] = {**{f.name: getattr(current, f.name) for f in fields(current)}, **change}
            if raw[head].get("kind") in ("constant", "none"):
                raise _fail(f"{head}.kind", f"a kind for the changed {head} fields "
                            f"(e.g. {head}.kind=...): this recipe has none", change)
    return dataclasses.replace(recipe, **parse_recipe_fields(raw))


def from_settings(settings: Mapping[str, Any], recipe_id: str = "run") -> Recipe:
    """A recipe from a run identity's `recipe` (as `Recipe.settings` wrote it)."""
    return Recipe(id=recipe_id, title=recipe_id, **parse_recipe_fields(settings))


def settings_json(settings: Mapping[str, Any] | None) -> str | None:
    """A recipe's settings (a run identity's `recipe`) as canonical JSON, to compare them."""
    return None if settings is None else json.dumps(settings, sort_keys=True)
