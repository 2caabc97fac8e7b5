"""Backtest warnings (issue 11, item 2): figures that would mislead are flagged, each with
what it means and what to do; a sound run gets none. Crafted summaries, no backtest."""

from __future__ import annotations

import math

import pytest

from offline.backtest.warnings import BUDGET_MULTIPLE, backtest_warnings

DAY = 86400.0


def online(**kw):
    run = {"name": "online gam-pairs-asinh", "roc_auc": 0.93, "alerts_per_day_mean": 40.0, "alerts": 280,
           "transactions": 70_000, "genuine_learned": 60_000, "examples_seen": 60_500}
    run.update(kw)
    return run


def batch(**kw):
    run = {"name": "batch random-forest", "roc_auc": 0.88, "alerts_per_day_mean": 60.0, "alerts": 420,
           "transactions": 70_000}
    run.update(kw)
    return run


def warnings_for(runs, **kw):
    args = {"budget_k": 100, "warmup_s": 14 * DAY, "horizon_s": 7 * DAY, "threshold": 0.5, "warmup_genuine": 1000}
    args.update(kw)
    return backtest_warnings(runs, **args)


def codes(ws):
    return [w.code for w in ws]


def test_a_sound_backtest_has_no_warning():
    assert warnings_for([online(), batch()]) == []


def test_the_issues_short_history_warns_no_genuine_example_auc_and_warm_up():
    # 100k transactions, ~6.7 days: AUC 0.4197, learned_genuine_at_horizon 0, all alerts the rules'
    ws = warnings_for([online(roc_auc=0.4197, genuine_learned=0, examples_seen=310)], warmup_s=6.7 * DAY,
                      test_start_given=False)
    assert codes(ws) == ["no-genuine-learned", "warmup-shorter-than-horizon", "auc-below-chance"]
    no_genuine, warm_up, auc = (w.message for w in ws)
    assert "learned no genuine example" in no_genuine and "every alert was an expert rule's" in no_genuine
    assert "longer" in no_genuine  # what to do
    assert "whole run (6.7 days)" in warm_up and "label horizon (7.0 days)" in warm_up
    assert "0.4197" in auc and "below 0.5" in auc
    assert ws[0].run == "online gam-pairs-asinh" and ws[1].run is None


def test_the_issues_random_forest_alerting_on_almost_everything():
    # 67,104 alerts of 67,662 test transactions, 13,420 alerts a day
    ws = warnings_for([online(), batch(alerts=67_104, transactions=67_662, alerts_per_day_mean=13_420.0)])
    assert codes(ws) == ["alerts-on-most-transactions", "alerts-over-budget"]
    most, budget = ws
    assert "67,104 of 67,662" in most.message and "99.2%" in most.message
    assert "134x the budget of 100" in budget.message and "--threshold" in budget.message
    assert {w.run for w in ws} == {"batch random-forest"}


@pytest.mark.parametrize(("per_day", "warned"), [(299.0, False), (300.0, True), (1092.0, True)])
def test_alerts_a_day_several_times_the_budget(per_day, warned):
    assert BUDGET_MULTIPLE == 3
    assert ("alerts-over-budget" in codes(warnings_for([online(alerts_per_day_mean=per_day)]))) is warned


def test_the_budget_is_the_first_budget_value():
    assert codes(warnings_for([online(alerts_per_day_mean=80.0)], budget_k=25)) == ["alerts-over-budget"]


def test_warm_up_before_test_start_shorter_than_the_horizon_says_where_to_start():
    ws = warnings_for([online()], warmup_s=2 * DAY, earliest_test_start="2026-01-08")
    assert codes(ws) == ["warmup-shorter-than-horizon"]
    assert "before --test-start is 2.0 days" in ws[0].message
    assert "--test-start 2026-01-08 or later" in ws[0].message
    # a window opening at midnight, a few seconds short of one horizon after the first transaction, is fine
    assert warnings_for([online()], warmup_s=7 * DAY - 17) == []


def test_a_model_that_learned_too_few_genuine_examples_to_alert():
    ws = warnings_for([online(genuine_learned=8, examples_seen=93)])
    assert codes(ws) == ["model-never-alerted"]
    assert "only 8 genuine examples" in ws[0].message and "1,000" in ws[0].message
    # without a warm-up threshold, any genuine example lets the score alert
    assert warnings_for([online(genuine_learned=8)], warmup_genuine=0) == []


def test_no_genuine_example_without_a_warm_up_threshold_says_the_alerts_are_the_untrained_models():
    ws = warnings_for([online(genuine_learned=0)], warmup_genuine=0)
    assert codes(ws) == ["no-genuine-learned"] and "seen frauds only" in ws[0].message


def test_undefined_figures_do_not_warn():
    # one class in the window: AUC NaN; no test transactions; a batch run has no genuine_learned
    runs = [online(roc_auc=math.nan, transactions=0, alerts=0), batch(roc_auc=None, alerts_per_day_mean=math.nan)]
    assert warnings_for(runs) == []


def test_warnings_serialise_for_the_json_summary():
    (w,) = warnings_for([batch(roc_auc=0.3)])
    assert w.as_dict() == {"code": "auc-below-chance", "run": "batch random-forest", "message": w.message}
