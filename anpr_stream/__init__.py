"""anpr-stream: ANPR hit processing from Kafka camera reads to dispatch and a GDPR-bound PostgreSQL log."""

__version__ = "0.1.0"
