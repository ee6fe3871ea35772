"""The audit signer and the checkpoint verifier (I/O): keys, the append-only checkpoint directory, the checkpoint
topic, and the database side. The pure rules are in `anpr_stream.audit.checkpoint`.

The signer runs as its own process (`anpr-stream audit checkpoint --every N`), with the private key on its host and
a database login that may read audit_log (the service's login suffices; it needs no other right). It never signs a
log that no longer matches its last checkpoint, nor rows that do not chain: it refuses, and says so, every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from anpr_stream.audit.chain import GENESIS, ChainWalker, StoredRow
from anpr_stream.audit.checkpoint import (
    MAX_ROWS,
    Checkpoint,
    CheckpointError,
    Comparer,
    Finding,
    SignedCheckpoint,
    first_finding,
    key_id,
    next_checkpoints,
    sign,
    verify_series,
)
from anpr_stream.audit.log import SELECT_CHAIN
from anpr_stream.retention.purge import CHECKPOINT_CHANNEL
from anpr_stream.stream.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

# Sent by a purge in its transaction (payload: the schema): the signer checkpoints as soon as the purge commits.
NOTIFY_CHANNEL = CHECKPOINT_CHANNEL
_FILE_PREFIX = "checkpoint-"


class SignerError(RuntimeError):
    """The signer will not sign: the log or the checkpoint directory is not what it signed before."""


# -- keys -----------------------------------------------------------------------------------------------------


def generate_keys(private_path: Path, public_path: Path) -> Ed25519PublicKey:
    """A new Ed25519 key pair: the private key in PKCS#8 PEM, readable by its owner only; the public key in PEM.
    Existing files are never overwritten (a lost key would make every earlier checkpoint unverifiable)."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists: not overwritten")
    _write_new(private_path, private_pem, 0o400)
    _write_new(public_path, public_pem, 0o444)
    return key.public_key()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SignerError(f"{path} is readable by others (mode {stat.filemode(mode)}): chmod 400 it")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignerError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise SignerError(f"{path} is not an Ed25519 public key")
    return key


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (never replace it), write, fsync the file and its directory."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- the append-only directory ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointDir:
    """One file per checkpoint, `checkpoint-<seq>.json`, created once and never rewritten (mode 0444). An auditor
    copies the directory away (rsync, WORM storage); the verifier reads either copy."""

    path: Path

    def file_for(self, seq: int) -> Path:
        return self.path / f"{_FILE_PREFIX}{seq:010d}.json"

    def files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.iterdir() if p.name.startswith(_FILE_PREFIX) and p.suffix == ".json")

    def read(self) -> Iterator[SignedCheckpoint | Finding]:
        """Each checkpoint in file order, or a finding for a file that is not one (or not the one its name says)."""
        for path in self.files():
            try:
                signed = SignedCheckpoint.parse(path.read_bytes())
            except (OSError, CheckpointError) as exc:
                yield Finding("bad-checkpoint", f"{path.name}: {exc}")
                continue
            if path.name != self.file_for(signed.checkpoint.seq).name:
                yield Finding("bad-checkpoint", f"{path.name} holds checkpoint {signed.checkpoint.seq}")
                continue
            yield signed

    def last(self) -> SignedCheckpoint | None:
        files = self.files()
        return SignedCheckpoint.parse(files[-1].read_bytes()) if files else None

    def write(self, signed: SignedCheckpoint) -> Path:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.file_for(signed.checkpoint.seq)
        _write_new(target, signed.to_json() + b"\n", 0o444)
        return target

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One signer at a time per directory (a second one fails at once instead of numbering alike)."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.path / ".signer.lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SignerError(f"another signer holds {self.path}") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# -- the topic ------------------------------------------------------------------------------------------------


async def ensure_checkpoint_topic(bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT) -> None:
    """One partition (one order), kept for good: checkpoints hold hashes and ids, no personal data, and are needed as
    long as the audit log they sign is kept. Under ACLs the Kafka admin creates it (docs/kafka-security.md): a topic
    the signer can see is left alone, one it may not create is a SignerError naming the missing ACL."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, **security.aiokafka_options(), client_id="anpr-stream-audit-signer"
    )
    try:
        await admin.start()
        if topic in set(await admin.list_topics()):
            return
        configs = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1",
                   "max.message.bytes": "2097152"}  # fmt: skip
        response = await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
        for error in response.topic_errors:
            if error[1] in (29, 31):  # TOPIC_ / CLUSTER_AUTHORIZATION_FAILED
                who = f"User:{security.sasl_username}" if security.sasl_username else "this client's principal"
                raise SignerError(f"the checkpoint topic {topic} does not exist and {who} may not create it (no "
                                  "CREATE ACL): create it as the Kafka admin (docs/kafka-security.md)")  # fmt: skip
            if error[1] and error[1] != TopicAlreadyExistsError.errno:
                raise SignerError(f"creating {topic}: error code {error[1]}: {error[2] if len(error) > 2 else ''}")
    finally:
        await admin.close()


async def topic_checkpoints(
    bootstrap: str, topic: str, wait_s: float = 30.0, *, security: KafkaSecurity = PLAINTEXT
) -> list[SignedCheckpoint | Finding]:
    """Every record of the checkpoint topic, parsed (a record that is not a checkpoint becomes a finding). Raises
    RuntimeError when the topic does not exist within `wait_s`."""
    from anpr_stream.stream.compacted import open_from_beginning, records_to_end

    consumer = await open_from_beginning(bootstrap, topic, wait_s=wait_s, security=security)
    out: list[SignedCheckpoint | Finding] = []
    try:
        async for record in records_to_end(consumer):
            try:
                out.append(SignedCheckpoint.parse(record.value or b""))
            except CheckpointError as exc:
                out.append(Finding("bad-checkpoint", f"{topic} offset {record.offset}: {exc}"))
    finally:
        await consumer.stop()
    return out


class TopicPublisher:
    def __init__(self, bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap, self.topic, self.security = bootstrap, topic, security

    async def published_seqs(self) -> set[int]:
        return {c.checkpoint.seq for c in await topic_checkpoints(self.bootstrap, self.topic, security=self.security)
                if isinstance(c, SignedCheckpoint)}  # fmt: skip

    async def publish(self, checkpoints: list[SignedCheckpoint]) -> None:
        from aiokafka import AIOKafkaProducer

        if not checkpoints:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            **self.security.aiokafka_options(),
            acks="all",
            enable_idempotence=True,
            max_request_size=2097152,
        )
        await producer.start()
        try:
            for signed in checkpoints:
                await producer.send_and_wait(self.topic, signed.to_json(), key=str(signed.checkpoint.seq).encode())
        finally:
            await producer.stop()


# -- signing ----------------------------------------------------------------------------------------------------


@dataclass
class SignRun:
    written: list[Checkpoint] = field(default_factory=list)
    published: int = 0  # checkpoints sent to the topic in this run (earlier unpublished ones included)


async def _schema(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT current_schema()"))


async def _new_rows(conn: asyncpg.Connection, last: Checkpoint | None) -> AsyncIterator[list[tuple[int, str]]]:
    """The rows appended since `last`, checked to chain from its head, in chunks of MAX_ROWS. Raises SignerError when
    the log does not match the last checkpoint or a row does not chain (the signer must not sign a rewrite)."""
    head_id, head_hash = (last.head_id, last.head_hash) if last else (0, GENESIS)
    if last is not None and head_id > 0:
        stored = await conn.fetchval("SELECT row_hash FROM audit_log WHERE id = $1", head_id)
        if stored != head_hash:
            what = "is gone" if stored is None else "has a different row_hash"
            raise SignerError(f"audit log no longer matches checkpoint {last.seq}: row id {head_id} {what}; not "
                              "signing (run `anpr-stream audit verify` with the checkpoints)")  # fmt: skip
    prev = head_hash
    chunk: list[tuple[int, str]] = []
    query = SELECT_CHAIN.replace("ORDER BY id", "WHERE id > $1 ORDER BY id")
    async for record in conn.cursor(query, head_id, prefetch=MAX_ROWS):
        row = StoredRow(**dict(record))
        if row.prev_hash != prev or row.computed_hash() != row.row_hash:
            raise SignerError(f"row id {row.id} does not chain from the last signed row (id {head_id}) or does not "
                              "match its hash; not signing (run `anpr-stream audit verify`)")  # fmt: skip
        chunk.append((row.id, row.row_hash))
        prev = row.row_hash
        if len(chunk) == MAX_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def sign_checkpoints(
    conn: asyncpg.Connection,
    key: Ed25519PrivateKey,
    directory: CheckpointDir,
    *,
    reason: str,
    publisher: TopicPublisher | None = None,
    now: datetime | None = None,
) -> SignRun:
    """One signing pass: sign what was appended since the last checkpoint in `directory` (nothing is written at an
    interval when nothing was appended; a purge or a manual run writes a checkpoint even then), write each file, then
    publish to the topic every checkpoint it does not hold yet."""
    run = SignRun()
    public = key.public_key()
    with directory.lock():
        last_signed = directory.last()
        if last_signed is not None and not last_signed.verifies(public):
            raise SignerError(f"the last checkpoint in {directory.path} (seq {last_signed.checkpoint.seq}) is not "
                              "signed with this key: not continuing it")  # fmt: skip
        published = await publisher.published_seqs() if publisher is not None else set()
        last = last_signed.checkpoint if last_signed else None
        if published and max(published) > (last.seq if last else 0):
            raise SignerError(f"the topic {publisher.topic if publisher else ''} holds checkpoint {max(published)}, "
                              f"the directory only {last.seq if last else 0}: restore the directory first")  # fmt: skip
        schema = await _schema(conn)
        if last is not None and last.schema != schema:
            raise SignerError(f"the directory signs schema {last.schema!r}, not {schema!r}")
        stamp = now or datetime.now(UTC)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            async for chunk in _new_rows(conn, last):
                for cp in next_checkpoints(last, chunk, now=stamp, reason=reason, public_key=public, schema=schema):
                    directory.write(sign(cp, key))
                    run.written.append(cp)
                    last = cp
        if not run.written and reason != "interval":
            cp = next_checkpoints(last, [], now=stamp, reason=reason, public_key=public, schema=schema)[0]
            directory.write(sign(cp, key))
            run.written.append(cp)
        if publisher is not None:
            unpublished = [
                signed for signed in directory.read()
                if isinstance(signed, SignedCheckpoint) and signed.checkpoint.seq not in published
            ]  # fmt: skip
            await publisher.publish(unpublished)
            run.published = len(unpublished)
    for cp in run.written:
        log.info("audit checkpoint %d (%s): %d row(s), head id %d, key %s", cp.seq, cp.reason, len(cp.rows),
                 cp.head_id, cp.key_id)  # fmt: skip
    return run


async def run_signer(
    url: str,
    key: Ed25519PrivateKey,
    directory: CheckpointDir,
    every: float,
    publisher: TopicPublisher | None,
    stop: asyncio.Event,
) -> None:
    """Checkpoint every `every` seconds and as soon as a purge commits (NOTIFY); errors are logged and retried at the
    next turn (a refusal is repeated every turn: it is an alarm, not a state to get used to)."""
    purged = asyncio.Event()
    conn: asyncpg.Connection | None = None
    schema = ""

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == schema:
            purged.set()

    while not stop.is_set():
        reason = "purge" if purged.is_set() else "interval"
        purged.clear()
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(url)
                schema = await _schema(conn)
                await conn.add_listener(NOTIFY_CHANNEL, on_notify)
            await sign_checkpoints(conn, key, directory, reason=reason, publisher=publisher)
        except SignerError as exc:
            log.error("audit signer refuses: %s", exc)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as exc:
            log.error("audit checkpoint failed (retried in %.0f s): %s: %s", every, type(exc).__name__, exc)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
                conn = None
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(purged.wait())]
        await asyncio.wait(waits, timeout=every, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    if conn is not None:
        await conn.close()


# -- verifying ----------------------------------------------------------------------------------------------------


@dataclass
class CheckpointVerification:
    rows: int
    last_id: int | None
    findings: list[Finding]
    checkpoints: int  # checkpoints relied on (signature and links verified)
    last_checkpoint: Checkpoint | None
    signed_rows: int
    unsigned_tail: int
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return first_finding(*self.findings)


async def verify_with_checkpoints(
    conn: asyncpg.Connection,
    public_key: Ed25519PublicKey,
    directory: CheckpointDir | None,
    topic: tuple[str, str] | None = None,
    batch: int = 5000,
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> CheckpointVerification:
    """The chain walk of `verify_audit` and, in the same pass, the comparison with every signed row. The directory and
    the topic (bootstrap, name) are merged: each holds a copy, and a checkpoint missing from one is named."""
    findings: list[Finding] = []
    notes: list[str] = []
    found: list[SignedCheckpoint] = []
    dir_seqs: set[int] = set()
    if directory is not None:
        for item in directory.read():
            if isinstance(item, Finding):
                findings.append(item)
            else:
                found.append(item)
                dir_seqs.add(item.checkpoint.seq)
        if not directory.files():
            notes.append(f"no checkpoints in {directory.path}")
    if topic is not None:
        topic_seqs: set[int] = set()
        try:
            from_topic = await topic_checkpoints(*topic, wait_s=5.0, security=security)
        except (RuntimeError, KafkaError) as exc:  # a deleted topic: the directory's copy still counts
            from_topic = []
            notes.append(f"the checkpoint topic {topic[1]} could not be read: {type(exc).__name__}: {exc}")
        for item in from_topic:
            if isinstance(item, Finding):
                findings.append(item)
            else:
                found.append(item)
                topic_seqs.add(item.checkpoint.seq)
        if directory is not None:
            if only_topic := sorted(topic_seqs - dir_seqs):
                findings.append(Finding("missing-checkpoint", f"the directory lacks checkpoint(s) {_ranges(only_topic)}"
                                        f" that the topic {topic[1]} holds", None, only_topic[0]))  # fmt: skip
            if only_dir := sorted(dir_seqs - topic_seqs):
                notes.append(f"the topic {topic[1]} lacks checkpoint(s) {_ranges(only_dir)} (the signer publishes "
                             "them on its next run)")  # fmt: skip
    schema = await _schema(conn)
    series = verify_series(found, public_key, schema=schema)
    findings.extend(series.problems)
    if any(cp.key_id != key_id(public_key) for cp in series.valid):
        notes.append("some checkpoints name another key id")
    walker = ChainWalker()
    comparer = Comparer(cp_row for cp in series.valid for cp_row in ((i, h, cp.seq) for i, h in cp.rows))
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for record in conn.cursor(SELECT_CHAIN, prefetch=batch):
            row = StoredRow(**dict(record))
            walker.feed(row)
            comparer.feed(row.id, row.row_hash)
        broken = walker.finish()
        compared = comparer.finish()
    if broken is not None:
        findings.append(Finding(broken.kind, f"hash chain: {broken.reason}", broken.row_id))
    if compared is not None:
        findings.append(compared)
    last = series.last
    if last is not None and comparer.unsigned_tail:
        notes.append(f"{comparer.unsigned_tail} row(s) after the last checkpoint ({last.seq}, "
                     f"{last.issued_at.isoformat()}) are covered by the hash chain alone")  # fmt: skip
    return CheckpointVerification(
        rows=walker.count, last_id=walker.last_id, findings=findings, checkpoints=len(series.valid),
        last_checkpoint=last, signed_rows=comparer.signed, unsigned_tail=comparer.unsigned_tail, notes=notes,
    )  # fmt: skip


def _ranges(seqs: list[int]) -> str:
    return f"{seqs[0]}..{seqs[-1]}" if len(seqs) > 1 else str(seqs[0])
