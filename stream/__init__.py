"""Faust shell around the pure core: topics, agents, validation + dead-letter, CLI, web views."""
