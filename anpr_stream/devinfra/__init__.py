"""Local development infrastructure without Docker: a real Kafka broker (jars from Maven Central) and a private
PostgreSQL cluster, started and stopped by the project's own files. Not used by the service in production."""
