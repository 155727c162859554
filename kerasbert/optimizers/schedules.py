"""Learning-rate schedules: bert4keras's piecewise-linear ``lr_schedule`` as a Keras schedule."""

import keras
from keras import ops

from kerasbert.optimizers.errors import OptimizerError


@keras.saving.register_keras_serializable(package="kerasbert")
class PiecewiseLinearSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """bert4keras's piecewise-linear learning rate: ``base_learning_rate * f(step)``.

    ``schedule`` maps steps to multipliers, e.g. ``{1000: 1, 2000: 0.1}``: the multiplier
    rises linearly from 0 at step 0 to 1 at step 1000, falls linearly to 0.1 at step 2000
    and stays 0.1 afterwards. As in bert4keras's ``piecewise_linear``, the point
    ``(0, 0.0)`` is added when ``from_zero`` and the schedule has no step 0; before the
    first point the multiplier is the first point's value. Steps are optimizer steps
    (``optimizer.iterations`` before the update, so the first update uses step 0); with
    Keras's ``gradient_accumulation_steps`` they count batches, as bert4keras's did.

    Args:
        schedule: ``{step: multiplier}`` (steps may be strings, as JSON writes them) or a
            sequence of ``(step, multiplier)`` pairs; steps are integers >= 0.
        base_learning_rate: the learning rate a multiplier of 1 stands for.
        from_zero: start from multiplier 0 at step 0 when the schedule has no step 0.

    Example:

    >>> schedule = PiecewiseLinearSchedule({1000: 1, 2000: 0.1}, 2e-5)
    >>> [round(float(schedule(step)) / 2e-5, 3) for step in (0, 500, 1000, 1500, 5000)]
    [0.0, 0.5, 1.0, 0.55, 0.1]
    """

    def __init__(self, schedule, base_learning_rate=1.0, from_zero=True):
        items = schedule.items() if isinstance(schedule, dict) else schedule
        points = {}
        try:
            for step, value in items:
                step_int, value = int(step), float(value)
                if step_int != float(step) or step_int < 0:
                    raise ValueError
                if step_int in points:
                    raise OptimizerError(
                        f"Learning-rate schedule {schedule!r} gives step {step_int} twice."
                    )
                points[step_int] = value
        except (TypeError, ValueError) as error:
            if isinstance(error, OptimizerError):
                raise
            raise OptimizerError(
                f"Learning-rate schedule {schedule!r} must map integer steps >= 0 to numbers, "
                "e.g. {1000: 1.0, 2000: 0.1}."
            ) from None
        if not points:
            raise OptimizerError(
                "The learning-rate schedule is empty; give at least one {step: multiplier}."
            )
        self.schedule = tuple(sorted(points.items()))
        self.base_learning_rate = float(base_learning_rate)
        self.from_zero = bool(from_zero)
        knots = list(self.schedule)
        if self.from_zero and knots[0][0] != 0:
            knots.insert(0, (0, 0.0))
        self._knots = knots

    def multiplier(self, step):
        """The schedule's multiplier at ``step`` (a number or tensor), as a float32 tensor."""
        t = ops.cast(step, "float32")
        value = ops.ones_like(t) * self._knots[0][1]
        for (t0, v0), (t1, v1) in zip(self._knots, self._knots[1:]):
            ramp = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
            value = ops.where(t >= t0, ramp, value)
        last_step, last_value = self._knots[-1]
        return ops.where(t >= last_step, last_value, value)

    def __call__(self, step):
        return self.multiplier(step) * self.base_learning_rate

    def get_config(self):
        return {
            "schedule": [[step, value] for step, value in self.schedule],
            "base_learning_rate": self.base_learning_rate,
            "from_zero": self.from_zero,
        }
