"""The pipeline's observations, as one small interface: the loop calls these hooks and never touches a metrics
library (faust's sensors, in spirit). metrics.PrometheusSensor implements them; NullSensor ignores them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from anpr_stream.core.batch import BatchResult
from anpr_stream.core.hits import Hit


class Sensor(Protocol):
    def on_fetched(self, records: int, delay_seconds: float) -> None: ...
    def on_phase(self, phase: str, seconds: float) -> None: ...
    def on_prepared(self, result: BatchResult, late: int) -> None: ...
    def on_stored(self, passages: int, seconds: float, pending: int, watermark_lag: float | None) -> None: ...
    def on_duplicates(self, count: int) -> None: ...
    def on_isolated(self, stage: str, count: int) -> None: ...
    def on_forced(self, count: int) -> None: ...
    def on_committed(self, result: BatchResult) -> None: ...
    def on_published(self, hits: Sequence[Hit], committed: datetime) -> None: ...
    def on_db_retry(self) -> None: ...
    def on_session_failed(self, kind: str) -> None: ...
    def on_lag(self, partition: int, lag: int) -> None: ...


class NullSensor:
    def on_fetched(self, records: int, delay_seconds: float) -> None:
        pass

    def on_phase(self, phase: str, seconds: float) -> None:
        pass

    def on_prepared(self, result: BatchResult, late: int) -> None:
        pass

    def on_stored(self, passages: int, seconds: float, pending: int, watermark_lag: float | None) -> None:
        pass

    def on_duplicates(self, count: int) -> None:
        pass

    def on_isolated(self, stage: str, count: int) -> None:
        pass

    def on_forced(self, count: int) -> None:
        pass

    def on_committed(self, result: BatchResult) -> None:
        pass

    def on_published(self, hits: Sequence[Hit], committed: datetime) -> None:
        pass

    def on_db_retry(self) -> None:
        pass

    def on_session_failed(self, kind: str) -> None:
        pass

    def on_lag(self, partition: int, lag: int) -> None:
        pass
