"""The model candidates by name: River classifiers chosen for imbalanced (fraud ~0.1-1 %),
drifting transaction streams.

Every candidate is a plain ``river.base.Classifier`` built by a zero-argument factory, so
``build(name)`` always gives a fresh, unfitted model and ``model.clone()`` works as in River.

How each one copes with the class imbalance:

* ``gam-pairs-asinh`` (default, :data:`DEFAULT_MODEL`) — ``gam-pairs`` fed ``asinh`` of
  every feature, so heavy-tailed amounts, counts and sums spread over the step functions'
  bins instead of piling into one (best mean rank over the three benchmarks of
  docs/model-quality.md).
* ``gam-pairs`` — ``gam`` plus hashed weights for pairs of unusual feature values, for
  conjunctions an additive model can only sum (:mod:`models.gam`).
* ``gam`` — :class:`~models.gam.AdditiveLogisticRegression`: the fast logistic
  regression plus a learned step function of each standardised feature.
* ``logreg`` — :class:`~models.linear.FastLogisticRegression`: running standardisation,
  normalised SGD with weight decay, positive-class loss weight, on numpy arrays.
* ``mlp`` — :class:`~models.mlp.OnlineMLP`: the fast logistic regression plus a small tanh
  layer (wide and deep).
* ``logreg-river`` — River's own ``StandardScaler | LogisticRegression`` with a
  positive-class weight in the log loss; the reference the fast model is checked against.
* ``logreg-balanced`` — random under-sampling of genuine transactions (River ``imblearn``)
  around the scaled logistic regression, so it learns from a ~90/10 class mix.
* ``hat`` — Hoeffding Adaptive Tree (drift-aware subtree replacement), fraud examples
  weighted through the trees' sample weight.
* ``arf`` — Adaptive Random Forest (small, for speed) under the same under-sampling as
  ``logreg-balanced``, which also spares it ~90 % of its costly ``learn_one`` calls.

With a positive weight (or sampling ratio) of ~10, a score of 0.5 corresponds to a true
fraud probability of roughly 1/11 — a sensible alert threshold for a base rate below 1 %.
``python -m bench.models`` times every candidate.

>>> model = build(DEFAULT_MODEL)
>>> for _ in range(300):
...     model.learn_one({"a": 3.0, "b": 0.0}, True)
...     model.learn_one({"a": 0.0, "b": 0.0}, False)
>>> model.predict_proba_one({"a": 3.0, "b": 0.0})[True] > 0.9
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from river import base, forest, imblearn, linear_model, optim, preprocessing, tree

from models.errors import UnknownModelError
from models.gam import AdditiveLogisticRegression
from models.linear import ClassWeighted, FastLogisticRegression
from models.mlp import OnlineMLP

__all__ = [
    "CANDIDATES",
    "DEFAULT_MODEL",
    "DESCRIPTIONS",
    "ESTIMATOR_CLASSES",
    "PICKLED_CANDIDATES",
    "build",
]

_UNDER_SAMPLE = {False: 0.9, True: 0.1}
_SEED = 42


def _logreg() -> base.Classifier:
    return FastLogisticRegression()


def _logreg_river() -> base.Classifier:
    pipeline = preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.SGD(0.002),
        loss=optim.losses.Log(weight_pos=10.0),
        l2=1e-4,
        intercept_init=-3.0,
    )
    return cast(base.Classifier, pipeline)  # a pipeline ending in a classifier is one


def _logreg_balanced() -> base.Classifier:
    return imblearn.RandomUnderSampler(
        # a 10 % fraud stream: start at logit(0.1), bigger steps as far fewer examples are kept
        FastLogisticRegression(lr=0.2, pos_weight=1.0, intercept_init=-2.2),
        desired_dist=dict(_UNDER_SAMPLE),
        seed=_SEED,
    )


def _hat() -> base.Classifier:
    return ClassWeighted(
        tree.HoeffdingAdaptiveTreeClassifier(
            grace_period=100, max_depth=12, leaf_prediction="mc", seed=_SEED
        ),
        pos_weight=10.0,
    )


def _arf() -> base.Classifier:
    return imblearn.RandomUnderSampler(
        forest.ARFClassifier(n_models=5, max_depth=12, seed=_SEED),
        desired_dist=dict(_UNDER_SAMPLE),
        seed=_SEED,
    )


def _mlp() -> base.Classifier:
    return OnlineMLP()


def _gam() -> base.Classifier:
    return AdditiveLogisticRegression()


def _gam_pairs() -> base.Classifier:
    return AdditiveLogisticRegression(interactions=1.0)


def _gam_pairs_asinh() -> base.Classifier:
    # weight decay 1e-5, not 1e-4: a rare but decisive feature (an emptied balance) keeps its
    # weight between the rare frauds that teach it
    return AdditiveLogisticRegression(interactions=1.0, squash=True, l2=1e-5)


CANDIDATES: dict[str, Callable[[], base.Classifier]] = {
    "gam": _gam,
    "gam-pairs": _gam_pairs,
    "gam-pairs-asinh": _gam_pairs_asinh,
    "logreg": _logreg,
    "mlp": _mlp,
    "logreg-river": _logreg_river,
    "logreg-balanced": _logreg_balanced,
    "hat": _hat,
    "arf": _arf,
}

DESCRIPTIONS: dict[str, str] = {
    "gam": "additive model: the fast logistic regression plus a learned 15-step function of each feature",
    "gam-pairs": "gam plus hashed weights for pairs of unusual feature values (|z| >= 1)",
    "gam-pairs-asinh": "gam-pairs on asinh-squashed inputs (heavy-tailed amounts and counts spread over the bins),"
    " weight decay 1e-5",
    "logreg": "fast scaled logistic regression (numpy, normalised SGD, fraud weight 10)",
    "mlp": "wide and deep: the fast logistic regression plus a 16-unit tanh layer (Adam), fraud weight 10",
    "logreg-river": "River StandardScaler | LogisticRegression (SGD, fraud weight 10)",
    "logreg-balanced": "scaled logistic regression on a 90/10 under-sampled stream",
    "hat": "Hoeffding Adaptive Tree (class-share leaves), fraud weight 10, drift-aware",
    "arf": "Adaptive Random Forest, 5 trees, on a 90/10 under-sampled stream",
}

DEFAULT_MODEL = "gam-pairs-asinh"

#: Our numpy estimators by class name. Their state is plain values and arrays
#: (``state_dict``/``from_state``), so a checkpoint restores them without pickle.
ESTIMATOR_CLASSES: dict[str, type[FastLogisticRegression]] = {
    cls.__name__: cls for cls in (FastLogisticRegression, AdditiveLogisticRegression, OnlineMLP)
}

#: Candidates whose River estimator only pickle can capture. Checkpoints keep pickle for
#: these alone, and unpickle only after the checkpoint's signature checked out.
PICKLED_CANDIDATES = frozenset({"logreg-river", "logreg-balanced", "hat", "arf"})


def build(name: str) -> base.Classifier:
    """A fresh, unfitted classifier for a candidate name.

    >>> type(build("logreg")).__name__
    'FastLogisticRegression'
    >>> type(build(DEFAULT_MODEL)).__name__
    'AdditiveLogisticRegression'
    """
    try:
        factory = CANDIDATES[name]
    except KeyError:
        known = ", ".join(sorted(CANDIDATES))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None
    return factory()
