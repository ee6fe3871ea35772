"""The pure decision core: every rule that decides what a read becomes (a passage, a hit, an alert, a dead letter) and
when Kafka may be told it is done. No I/O here: no asyncio, Kafka or PostgreSQL client, no clock read, no environment;
the stream and sink layers call it with what they fetched and the time they read. tests/unit/test_pure_core.py walks
this package and enforces it."""
