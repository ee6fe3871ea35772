"""`anpr-stream infra`: start, stop and describe the local Kafka broker and PostgreSQL server (no Docker)."""
