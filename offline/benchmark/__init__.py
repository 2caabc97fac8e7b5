"""The model-quality benchmarks as one command: ``python -m offline.benchmark``.

Every online candidate and every batch baseline of ``offline/benchmarks.toml`` runs on
every dataset it lists (Sparkov, PaySim, Kuntur's simulator), each with its column
mapping and the literature's protocol: labels known ``label_delay`` after each
transaction, metrics over the test window, card precision@k per day with the accounts
found on earlier days removed. The online candidates run the worker's own pipeline
(:func:`offline.backtest.evaluate.run_online`, what ``kuntur evaluate`` runs); the batch
baselines are retrained on the very feature vectors the stream computed, on labels known
at each retrain. Each dataset's results are saved as JSON (``--results``) and
``docs/model-quality.md``'s tables are rewritten from every saved result, so datasets
can be run one at a time.

Modules: ``config`` (the TOML file), ``run`` (one dataset), ``tables`` (the Markdown)
and ``cli``.
"""

from offline.benchmark.config import Benchmarks, Dataset, load_benchmarks

__all__ = ["Benchmarks", "Dataset", "load_benchmarks"]
