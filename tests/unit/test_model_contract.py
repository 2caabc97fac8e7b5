"""Contract of every model candidate, in the spirit of River's ``test_estimators.py``."""

from __future__ import annotations

import copy
import math
import pickle
import random

import numpy as np
import pytest
from river import datasets
from river.checks import clf, common

from models.errors import UnknownModelError
from models.linear import ClassWeighted, FastLogisticRegression
from models.registry import CANDIDATES, DEFAULT_MODEL, build
from models.scorer import FraudModel, Reason

NAMES = ("a", "b", "c")


def pattern_stream(n: int, seed: int = 7, fraud_rate: float = 0.2):
    """Fraud iff feature "a" is large; "b" and "c" are noise."""
    rng = random.Random(seed)
    for _ in range(n):
        y = rng.random() < fraud_rate
        yield {"a": rng.gauss(3.0 if y else 0.0, 0.5), "b": rng.gauss(0.0, 1.0), "c": rng.random()}, y


FRAUDY = {"a": 3.0, "b": 0.0, "c": 0.5}
GENUINE = {"a": 0.0, "b": 0.0, "c": 0.5}


def test_default_model_is_a_candidate():
    assert DEFAULT_MODEL == "gam-pairs-asinh"
    assert {"gam", "gam-pairs", "logreg", "hat", "arf", "logreg-balanced", "mlp"} <= set(CANDIDATES)


def test_unknown_model_error_lists_known_names():
    with pytest.raises(UnknownModelError) as info:
        build("xgboost")
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'xgboost'" in message
    for name in CANDIDATES:
        assert name in message


def test_fraud_model_stores_constructor_arguments_unchanged():
    names = ["a", "b"]
    model = FraudModel("hat", names, generation=3, examples_seen=42, created=1_700_000_000.0)
    assert model.name == "hat"
    assert model.feature_names is names
    assert model.generation == 3
    assert model.examples_seen == 42
    assert model.created == 1_700_000_000.0
    assert model.version == "hat.g3"
    assert model.frauds_seen == 0


def test_fraud_model_uses_given_estimator():
    estimator = FastLogisticRegression(lr=0.1)
    model = FraudModel("custom", NAMES, estimator=estimator)
    assert model.estimator is estimator
    assert model.version == "custom.g0"
    clone = model.clone()
    assert clone.estimator is not estimator
    assert clone.name == "custom"
    assert clone.estimator.lr == 0.1


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_candidate_learns_and_scores_a_stream_of_dicts(name):
    model = FraudModel(name, NAMES)
    prior = model.score_one(FRAUDY)
    assert 0.0 <= prior < 0.5, "an unfitted model must not alert on everything"
    assert model.explain_one(FRAUDY) == []
    frauds = 0
    for x, y in pattern_stream(200):
        p = model.score_one(x)
        assert 0.0 <= p <= 1.0
        model.learn_one(x, y)
        frauds += y
    assert model.examples_seen == 200
    assert model.frauds_seen == frauds > 0
    proba = model.predict_proba_one(FRAUDY)
    assert math.isclose(proba[True] + proba[False], 1.0)


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_candidate_learns_a_separable_pattern(name):
    model = FraudModel(name, NAMES)
    before_hi = model.score_one(FRAUDY)
    for x, y in pattern_stream(600):
        model.learn_one(x, y)
    hi, lo = model.score_one(FRAUDY), model.score_one(GENUINE)
    assert hi > 0.5 > lo, (hi, lo)
    assert hi - before_hi > 0.4
    assert hi - lo > 0.4


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_clone_is_unfitted_equivalent(name):
    model = FraudModel(name, NAMES, generation=5)
    for x, y in pattern_stream(300):
        model.learn_one(x, y)
    clone = model.clone()
    fresh = FraudModel(name, NAMES)
    assert clone.examples_seen == 0 and clone.generation == 0
    assert clone.feature_names == model.feature_names
    assert repr(clone.estimator) == repr(build(name))
    assert clone.score_one(FRAUDY) == fresh.score_one(FRAUDY)
    assert clone.score_one(FRAUDY) != model.score_one(FRAUDY)


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_candidate_pickles_with_identical_scores(name):
    model = FraudModel(name, NAMES)
    for x, y in pattern_stream(300):
        model.learn_one(x, y)
    restored = pickle.loads(pickle.dumps(model))
    for x, _ in pattern_stream(20, seed=99):
        assert restored.score_one(x) == model.score_one(x)


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_explanation_names_the_driving_feature(name):
    model = FraudModel(name, NAMES)
    for x, y in pattern_stream(600):
        model.learn_one(x, y)
    reasons = model.explain_one(FRAUDY, top=3)
    assert reasons, "an alert must come with reasons"
    assert reasons[0] == Reason("a", 3.0, reasons[0].contribution)
    assert reasons[0].contribution > 0
    contributions = [r.contribution for r in reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert len(model.explain_one(FRAUDY, top=1)) == 1


def test_linear_contributions_are_exact_log_odds_terms():
    model = FraudModel("logreg", NAMES)
    for x, y in pattern_stream(400):
        model.learn_one(x, y)
    est = model.estimator
    contributions = est.contributions_one(FRAUDY)
    logit = sum(contributions.values()) + est.intercept
    assert math.isclose(1.0 / (1.0 + math.exp(-logit)), model.score_one(FRAUDY), rel_tol=1e-12)
    # weight * standardised value, standardised with the running mean and variance
    z_a = (FRAUDY["a"] - est.means["a"]) / math.sqrt(est._var[0])
    assert math.isclose(contributions["a"], est.weights["a"] * min(z_a, est.clip), rel_tol=1e-9)
    assert model.explain_one(FRAUDY)[0].contribution == contributions["a"]


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_explanation_comes_from_its_own_forward_pass(name):
    """No per-row state on the model: another score between a score and its explanation
    changes nothing, and the explanation equals a fresh one."""
    model = FraudModel(name, NAMES)
    for x, y in pattern_stream(600):
        model.learn_one(x, y)
    scoring = model.forward_one(FRAUDY)
    assert scoring.score == model.score_one(FRAUDY)
    other = model.forward_one(GENUINE)
    assert model.explain(scoring, FRAUDY) == model.explain_one(FRAUDY)
    assert model.explain(other, GENUINE) == model.explain_one(GENUINE)
    row = np.array([FRAUDY[k] for k in NAMES])
    assert model.forward_row(row, NAMES, FRAUDY).score == scoring.score
    assert model.explain(model.forward_row(row, NAMES, FRAUDY), FRAUDY) == model.explain_one(FRAUDY)


@pytest.mark.parametrize("name", ["logreg", "gam", "gam-pairs", "gam-pairs-asinh", "mlp"])
def test_forward_pass_leaves_the_model_unchanged(name):
    model = build(name)
    for x, y in pattern_stream(300):
        model.learn_one(x, y)
    before = pickle.dumps(model)
    model.forward_one(FRAUDY)
    model.contributions(model.forward_one({"a": math.nan, "b": math.inf, "c": 0.5}), FRAUDY)
    after = pickle.dumps(model)
    # scratch buffers (_d) may differ; everything a later call reads must not
    restored_before, restored_after = pickle.loads(before), pickle.loads(after)
    after_state = vars(restored_after)
    for attr, value in vars(restored_before).items():
        if attr not in ("_d", "_z", "_tmp", "_gg"):
            assert pickle.dumps(value) == pickle.dumps(after_state[attr]), attr


# -- FastLogisticRegression specifics ---------------------------------------------------------


def test_row_path_equals_dict_path():
    by_dict, by_row = FastLogisticRegression(), FastLogisticRegression()
    names = NAMES
    for x, y in pattern_stream(300):
        by_dict.learn_one(x, y)
        by_row.learn_row(np.array([x[k] for k in names]), names, y)
    for x, _ in pattern_stream(20, seed=3):
        row = np.array([x[k] for k in names])
        assert by_row.proba_row(row, names) == by_dict.proba_one(x) == by_row.proba_one(x)
    np.testing.assert_array_equal(by_row._w, by_dict._w)


def test_shuffled_keys_and_missing_features_are_mapped_by_name():
    model = FastLogisticRegression()
    for x, y in pattern_stream(300):
        model.learn_one(x, y)
    shuffled = {"c": FRAUDY["c"], "a": FRAUDY["a"], "b": FRAUDY["b"]}
    assert model.proba_one(shuffled) == pytest.approx(model.proba_one(FRAUDY), abs=1e-12)
    # a missing feature counts as average: standardised 0, no contribution
    without_a = {"b": 0.0, "c": 0.5}
    mean_a = dict(FRAUDY, a=model.means["a"])
    assert model.proba_one(without_a) == pytest.approx(model.proba_one(mean_a), abs=1e-12)
    assert model.proba_one({"unseen": 1.0, **FRAUDY}) == pytest.approx(model.proba_one(FRAUDY))


def test_non_finite_inputs_do_not_poison_the_model():
    model = FastLogisticRegression()
    for x, y in pattern_stream(200):
        model.learn_one(x, y)
    model.learn_one({"a": math.nan, "b": math.inf, "c": -math.inf}, True)
    assert np.isfinite(model._mean).all() and np.isfinite(model._w).all()
    assert 0.0 <= model.proba_one({"a": math.nan, "b": 0.0, "c": 0.5}) <= 1.0
    assert model.proba_one(FRAUDY) > 0.5


def test_fast_logreg_rejects_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        FastLogisticRegression(optimizer="lbfgs")


def test_class_weighted_passes_positive_weight():
    seen = []

    class Spy(FastLogisticRegression):
        def learn_one(self, x, y, w=1.0):
            seen.append((y, w))

    model = ClassWeighted(Spy(), pos_weight=7.0)
    model.learn_one({"a": 1.0}, True)
    model.learn_one({"a": 1.0}, False)
    model.learn_one({"a": 1.0}, True, w=2.0)
    assert seen == [(True, 7.0), (False, 1.0), (True, 14.0)]


# -- River's own estimator checks on our estimator classes -----------------------------------

RIVER_CHECKS = [
    common.check_repr,
    common.check_str,
    common.check_tags,
    common.check_clone_same_class,
    common.check_clone_is_idempotent,
    common.check_init_has_default_params_for_tests,
    common.check_init_default_params_are_not_mutable,
    common.check_doc,
    common.check_clone_changes_memory_addresses,
    common.check_pickling_supports_roundtrip,
    common.check_repr_roundtrips_clone,
    common.check_get_params_matches_signature,
]

RIVER_DATASET_CHECKS = [
    common.check_learn_one,
    common.check_pickling,
    common.check_shuffle_features_no_impact,
    common.check_emerging_features,
    common.check_disappearing_features,
    common.check_predict_one_pure,
    common.check_predict_one_before_any_learn,
    common.check_no_state_aliasing_with_input,
    common.check_clone_is_independent,
    clf.check_predict_proba_one,
    clf.check_predict_proba_one_binary,
    clf.check_classifier_tracks_seen_labels,
]


def river_estimators():
    return [
        pytest.param(cls(**params), id=f"{cls.__name__}({sorted(params)})")
        for cls in (FastLogisticRegression, ClassWeighted)
        for params in cls._unit_test_params()
    ]


@pytest.mark.parametrize("estimator", river_estimators())
@pytest.mark.parametrize("check", RIVER_CHECKS, ids=lambda c: c.__name__)
def test_river_general_checks(estimator, check):
    check(copy.deepcopy(estimator))


@pytest.mark.parametrize("estimator", river_estimators())
@pytest.mark.parametrize("check", RIVER_DATASET_CHECKS, ids=lambda c: c.__name__)
def test_river_dataset_checks(estimator, check):
    check(estimator.clone(), dataset=datasets.Phishing().take(200))
