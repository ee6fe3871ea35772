"""`anpr-stream retention expire-watchlist`: tombstones on the compacted watchlist topic for the entries whose
validity ended (more than ANPR_WATCHLIST_EXPIRY_GRACE_HOURS ago), so that compaction removes them from the disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaProducer

from anpr_stream.config import Settings
from anpr_stream.core.entry import WatchlistEntry
from anpr_stream.stream.compacted import open_from_beginning, records_to_end
from anpr_stream.stream.topics import ensure_topics
from anpr_stream.stream.watchlist_feed import decode_entry
from anpr_stream.watchlists.expiry import expired

# Appended (as a tombstone: no value, no entry) on every run. Compaction never touches the active segment, and a
# segment is closed only when a record is appended more than segment.ms after its first one: the tombstones of a
# run sit in the active segment, unable to remove anything, until the next append. On a quiet list that is this
# marker on the next run. A worker reads it as the delete of an entry it never had; `watchlist load --replace`
# ignores tombstones.
ROLL_MARKER = b"anpr-stream:segment-roll"


@dataclass
class ExpiryRun:
    as_of: datetime
    live: int  # entries on the topic before the run
    expired: list[WatchlistEntry] = field(default_factory=list)  # tombstoned (or, dry run, would be)
    changed_meanwhile: list[str] = field(default_factory=list)  # republished while we read: left alone
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would retract" if self.dry_run else "retracted"
        out = [f"watchlist expiry as of {self.as_of.isoformat()}: {self.live} live entries, {verb} "
               f"{len(self.expired)} whose validity ended"]  # fmt: skip
        for entry in self.expired:
            where = "covert" if entry.covert else entry.list  # no plates, and no covert list names, in the output
            until = entry.valid_until.isoformat() if entry.valid_until else ""
            out.append(f"  {entry.entry_id}  {where}  valid until {until}")
        out += [f"  {entry_id}: changed while expiring, left for the next run" for entry_id in self.changed_meanwhile]
        return out


async def expire_watchlist(settings: Settings, now: datetime, *, dry_run: bool = False) -> ExpiryRun:
    """Read the watchlist topic whole, tombstone the expired entries and append the roll marker."""
    await ensure_topics(settings)  # also sets the compaction configs that make the tombstones remove anything
    topic = settings.topics.watchlist
    consumer = await open_from_beginning(settings.kafka_bootstrap, topic, security=settings.kafka_security)
    try:
        live: dict[str, WatchlistEntry] = {}
        async for record in records_to_end(consumer):
            decoded = decode_entry(record.key, record.value)
            if isinstance(decoded, WatchlistEntry):
                live[decoded.entry_id] = decoded
            elif decoded is None and record.key is not None:
                live.pop(record.key.decode(errors="replace"), None)
            # an unusable value (str: its reason) leaves the previous entry in force, as the worker does
        due = {e.entry_id: e for e in expired(live.values(), now, settings.watchlist_expiry_grace)}
        # `watchlist load` may have extended an entry while we read: a tombstone now would delete the new version.
        # Read what arrived since and leave those keys to the next run (the window left is the send below).
        changed = set()
        async for record in records_to_end(consumer):
            if record.key is not None and record.key.decode(errors="replace") in due:
                changed.add(record.key.decode(errors="replace"))
    finally:
        await consumer.stop()
    run = ExpiryRun(now, len(live), [e for k, e in sorted(due.items()) if k not in changed], sorted(changed), dry_run)
    if dry_run:
        return run
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security.aiokafka_options(), acks="all",
        enable_idempotence=True,
    )  # fmt: skip
    await producer.start()
    try:
        sent = [await producer.send(topic, key=entry.entry_id.encode(), value=None) for entry in run.expired]
        sent.append(await producer.send(topic, key=ROLL_MARKER, value=None))
        for delivery in sent:
            await delivery  # raises if the broker did not take it
    finally:
        await producer.stop()
    return run
