"""An online "wide and deep" classifier: the fast logistic regression plus one hidden layer.

Fraud patterns are conjunctions — many *small* payments *within an hour*, a *new device*
and a *new IP* on a *transfer* — which a linear model can only add up, not combine. A
small tanh layer learns such interactions online, beside the linear ("wide") part that
keeps its weights readable. It reuses :class:`~models.linear.FastLogisticRegression`'s
running standardisation, clipping and normalised-SGD linear step; the hidden layer
learns with Adam.

log-odds = b + w·z + v·tanh(W z + c), z the clipped standardised feature row.

Explanations stay additive: a feature's contribution is its linear term plus the
first-order effect of its value through the hidden layer (``z_i * dlogit/dz_i`` of the
hidden part), so the top reasons of an alert name the features that drove the score.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from models.linear import FastLogisticRegression, state_array

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


class OnlineMLP(FastLogisticRegression):
    """Online wide-and-deep classifier (numpy), River ``Classifier`` contract.

    Parameters
    ----------
    hidden
        Units of the tanh layer.
    hidden_lr
        Adam step size of the hidden layer.
    seed
        Seed of the hidden layer's random initialisation.
    **kwargs
        :class:`FastLogisticRegression` parameters of the linear part and the scaler.

    Examples
    --------
    >>> model = OnlineMLP(hidden=4)
    >>> for i in range(200):
    ...     model.learn_one({"a": float(i % 2), "b": float(i % 3 == 0)}, i % 6 == 0)
    >>> model.predict_proba_one({"a": 0.0, "b": 1.0})[True] > model.predict_proba_one({"a": 1.0, "b": 0.0})[True]
    True
    """

    def __init__(self, hidden: int = 16, hidden_lr: float = 0.002, seed: int = 42, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = hidden
        self.hidden_lr = hidden_lr
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._W = np.zeros((hidden, 0))
        self._c = np.zeros(hidden)
        self._v = self._rng.normal(0.0, 0.1, hidden)
        self._adam_m = [np.zeros((hidden, 0)), np.zeros(hidden), np.zeros(hidden)]
        self._adam_v = [np.zeros((hidden, 0)), np.zeros(hidden), np.zeros(hidden)]
        self._adam_t = 0

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {"hidden": 4, "hidden_lr": 0.01}

    def _add_features(self, new: list[Any]) -> None:
        super()._add_features(new)
        k = len(new)
        scale = 1.0 / math.sqrt(max(1, len(self._names)))
        self._W = np.concatenate([self._W, self._rng.normal(0.0, scale, (self.hidden, k))], axis=1)
        for moments in (self._adam_m, self._adam_v):
            moments[0] = np.concatenate([moments[0], np.zeros((self.hidden, k))], axis=1)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        rng = self._rng.bit_generator.state
        state.update(
            hidden_W=self._W,
            hidden_c=self._c,
            hidden_v=self._v,
            adam_m=list(self._adam_m),
            adam_v=list(self._adam_v),
            adam_t=self._adam_t,
            # PCG64's 128-bit integers do not fit JSON numbers
            rng={"bit_generator": rng["bit_generator"],
                 "state": str(rng["state"]["state"]), "inc": str(rng["state"]["inc"]),
                 "has_uint32": rng["has_uint32"], "uinteger": rng["uinteger"]},
        )
        return state

    def _load_state(self, state: Mapping[str, Any]) -> None:
        super()._load_state(state)
        n, k = len(self._names), self.hidden
        self._W = state_array(state["hidden_W"], (k, n), "hidden_W")
        self._c = state_array(state["hidden_c"], (k,), "hidden_c")
        self._v = state_array(state["hidden_v"], (k,), "hidden_v")
        for key, moments in (("adam_m", self._adam_m), ("adam_v", self._adam_v)):
            saved = state[key]
            if not isinstance(saved, list) or len(saved) != 3:
                raise ValueError(f"state entry {key!r} must hold 3 arrays")
            for i, shape in enumerate(((k, n), (k,), (k,))):
                moments[i] = state_array(saved[i], shape, key)
        self._adam_t = int(state["adam_t"])
        rng = state["rng"]
        if rng["bit_generator"] != type(self._rng.bit_generator).__name__:
            raise ValueError(f"unexpected random generator {rng['bit_generator']!r}")
        self._rng.bit_generator.state = {
            "bit_generator": rng["bit_generator"],
            "state": {"state": int(rng["state"]), "inc": int(rng["inc"])},
            "has_uint32": int(rng["has_uint32"]),
            "uinteger": int(rng["uinteger"]),
        }

    def _extra_logit(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-odds of the hidden layer; the trace is its activations ``h``."""
        h = np.empty(self.hidden)
        np.dot(self._W, z, out=h)
        h += self._c
        np.tanh(h, out=h)
        return float(np.dot(self._v, h)), h

    def _extra_step(self, z: np.ndarray, g: float, trace: np.ndarray) -> None:
        self._hidden_step(z, trace, g)

    def _hidden_step(self, z: np.ndarray, h: np.ndarray, g: float) -> None:
        dh = g * self._v * (1.0 - h * h)
        grads = (np.outer(dh, z), dh, g * h)
        params = (self._W, self._c, self._v)
        self._adam_t += 1
        t = self._adam_t
        lr_t = self.hidden_lr * math.sqrt(1.0 - _BETA2**t) / (1.0 - _BETA1**t)
        for p, grad, m, v in zip(params, grads, self._adam_m, self._adam_v, strict=True):
            m *= _BETA1
            m += (1.0 - _BETA1) * grad
            v *= _BETA2
            v += (1.0 - _BETA2) * grad * grad
            p -= lr_t * m / (np.sqrt(v) + _EPS)

    def _contributions(self, z: np.ndarray, trace: np.ndarray) -> np.ndarray:
        """Linear term plus the first-order hidden-layer effect of each feature's value."""
        h = trace
        through_hidden = (self._v * (1.0 - h * h)) @ self._W
        return z * (self._w + through_hidden)

