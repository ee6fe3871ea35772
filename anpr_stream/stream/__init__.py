"""The stream worker: Kafka reads in, hits and dead letters out, passages and hits into PostgreSQL."""
