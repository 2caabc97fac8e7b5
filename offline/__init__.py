"""Offline work: the simulator and the backtest (evaluate, replay, report, metrics, batch baselines).

Neither the worker nor the online model: the only package that needs pandas, pyarrow,
scikit-learn or matplotlib (the ``eval`` extra). It imports ``features``, ``models`` and
``stream.pipeline``; nothing in ``features``, ``models`` or ``stream.pipeline`` imports it.
"""
