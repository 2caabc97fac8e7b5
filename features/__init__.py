"""Per-entity rolling-window state and feature extraction (pure Python, no Kafka)."""
