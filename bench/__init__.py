"""Kuntur benchmarks: throughput vs a passthrough ceiling, latency at fixed rates,
scale-out, state size and a per-stage profile. ``python -m bench`` runs them all."""
