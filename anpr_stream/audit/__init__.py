"""Append-only, hash-chained access log: who saw what, when, why and on whose authority."""

from anpr_stream.audit.chain import GENESIS, AuditRecord, ChainBreak, ChainWalker, StoredRow, row_hash

__all__ = ["GENESIS", "AuditRecord", "ChainBreak", "ChainWalker", "StoredRow", "row_hash"]
