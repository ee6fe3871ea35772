"""Where results go: PostgreSQL (batched, idempotent) and Kafka (hits, dead letters)."""
