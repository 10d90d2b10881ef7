"""The optimiser of the recipes: `torch.optim.SGD`'s update, with airbench's additions.

Keras' `SGD` folds the learning rate into the momentum buffer (m = mu*m - lr*g), PyTorch keeps
the buffer in gradient units and multiplies by the current lr (m = mu*m + g; w -= lr*m). They
agree for a constant lr; under a schedule they differ slightly, so the recipes, which come
from PyTorch code, use PyTorch's form. On top of it:

- `weight_decay` is coupled L2 (added to the gradient, so it flows through the momentum), as
  `torch.optim.SGD(weight_decay=)`; each step's decay is lr * weight_decay * w whatever the
  variable's lr scale (airbench's convention: it divides the decay by the scale);
- per-variable learning-rate scales (airbench's 64x for BatchNorm biases);
- variables frozen after a number of steps (airbench trains its whitening bias 3 epochs);
- lookahead / EMA weight averaging every few steps, over the trainable variables and any
  others given (BatchNorm's moving statistics), held as optimiser variables so that a
  checkpoint saves it and a resumed run continues it exactly.

The report's recipe keeps Keras' own `SGD`, so its runs compute exactly what they always have.
The backend-neutral `keras.ops` keep it usable on every Keras backend.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
from keras import ops


class _Untracked:
    """Holds variables out of Keras' attribute tracking, which would count the model's own
    variables among the optimiser's (and save them twice in every checkpoint)."""

    def __init__(self, items=()):
        self.items = list(items)


class RecipeSGD(keras.optimizers.Optimizer):
    """SGD with momentum in PyTorch's form, coupled weight decay, per-variable lr scales,
    freezing and weight averaging.

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        momentum: in [0, 1).
        nesterov: Nesterov momentum.
        l2: the coupled weight decay (`Recipe.weight_decay`).
        lr_scales: variable path -> learning-rate factor.
        frozen_after: variable path -> the number of steps after which it no longer changes.
        averaging: None, or (kind `lookahead`|`ema`, every, decay, power, total_steps).
        averaged_extra: non-trainable variables averaged too (BatchNorm moving statistics).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2=0.0,
                 lr_scales: Mapping[str, float] | None = None,
                 frozen_after: Mapping[str, int] | None = None,
                 averaging: tuple | None = None, averaged_extra: Sequence = (),
                 name="recipe_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.l2 = float(l2)
        self.lr_scales = dict(lr_scales or {})
        self.frozen_after = dict(frozen_after or {})
        self.averaging = tuple(averaging) if averaging else None
        self._extra = _Untracked(averaged_extra)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")
        self._scales = [self.lr_scales.get(v.path, 1.0) for v in variables]
        self._frozen = [self.frozen_after.get(v.path) for v in variables]
        self.averages = []
        if self.averaging:
            self._averaged = _Untracked(list(variables) + self._extra.items)
            for v in self._averaged.items:
                average = self.add_variable_from_reference(v, "average")
                # a copy: on JAX, assigning `v` itself would share its buffer, which the train
                # step then donates twice
                average.assign(ops.copy(v))
                self.averages.append(average)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        scale = self._scales[index]
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        if self.l2:
            gradient = gradient + ops.cast(self.l2 / scale, dtype) * variable
        m = self.momentums[index]
        momentum = ops.cast(self.momentum, dtype)
        new_m = momentum * m + gradient
        step = gradient + momentum * new_m if self.nesterov else new_m
        lr = ops.cast(learning_rate, dtype) * ops.cast(scale, dtype)
        frozen_after = self._frozen[index]
        if frozen_after is None:
            self.assign(m, new_m)
            self.assign_sub(variable, lr * step)
        else:  # a frozen variable has no gradient in PyTorch: neither it nor its buffer moves
            active = ops.cast(ops.less(self.iterations, frozen_after), dtype)
            self.assign(m, active * new_m + (1 - active) * m)
            self.assign_sub(variable, active * lr * step)

    def apply(self, grads, trainable_variables=None):
        super().apply(grads, trainable_variables)
        if self.averaging:
            self._average()

    def _average(self):
        kind, every, decay, power, total = self.averaging
        step = ops.cast(self.iterations, "float32")  # steps done, this one included
        due = ops.cast(ops.equal(ops.mod(self.iterations, every), 0), "float32")
        last = ops.cast(ops.greater_equal(self.iterations, total), "float32")
        rate = 1.0 - decay * ops.power(ops.minimum(step / float(total), 1.0), power)
        move = due * rate
        # lookahead sets the weights to the average when it moves; both at the last step
        reset = last if kind == "ema" else ops.maximum(due, last)
        for variable, average in zip(self._averaged.items, self.averages):
            dtype = variable.dtype
            moved = average + ops.cast(move, dtype) * (variable - average)
            self.assign(average, moved)
            keep = ops.cast(reset, dtype)
            self.assign(variable, keep * moved + (1 - keep) * variable)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov, "l2": self.l2,
                       "lr_scales": self.lr_scales, "frozen_after": self.frozen_after,
                       "averaging": self.averaging})
        return config


@keras.saving.register_keras_serializable("keras_cifar")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`base_lr` times a recipe's `Schedule.multiplier(step, total_steps)`, in `keras.ops`."""

    def __init__(self, base_lr: float, kind: str, start: float, peak: float, end: float,
                 total_steps: int):
        self.base_lr = float(base_lr)
        self.kind, self.start, self.peak, self.end = kind, float(start), float(peak), float(end)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        from keras_cifar.zoo.recipe import Schedule

        base = ops.cast(self.base_lr, "float32")
        if self.kind == "constant":
            return base
        total = float(self.total_steps)
        peak = float(Schedule(self.kind, self.start, self.peak, self.end).peak_step(self.total_steps))
        step = ops.minimum(ops.maximum(ops.cast(step, "float32"), 0.0), total)
        rising = self.start + (1.0 - self.start) * step / max(peak, 1.0)
        fraction = (step - peak) / max(total - peak, 1.0)
        if self.kind == "triangle":
            falling = 1.0 + (self.end - 1.0) * fraction
        else:
            falling = self.end + (1.0 - self.end) * 0.5 * (1.0 + ops.cos(3.141592653589793 * fraction))
        return base * ops.where(ops.less(step, peak), rising, falling)

    def get_config(self):
        return {"base_lr": self.base_lr, "kind": self.kind, "start": self.start,
                "peak": self.peak, "end": self.end, "total_steps": self.total_steps}
