"""`anpr-stream audit keygen | checkpoint | verify`: the signer's key pair, signed checkpoints of the audit chain (to
an append-only directory and a Kafka topic), and verification of the chain against them. Every verification is itself
appended to the audit log."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg

from anpr_stream import config
from anpr_stream.api.users import Operator, UserError
from anpr_stream.audit.chain import AuditRecord
from anpr_stream.audit.checkpoint import Finding, key_id
from anpr_stream.audit.log import append_audit, verify_audit
from anpr_stream.audit.signer import (
    CheckpointDir,
    CheckpointVerification,
    SignerError,
    TopicPublisher,
    ensure_checkpoint_topic,
    generate_keys,
    load_private_key,
    load_public_key,
    run_signer,
    sign_checkpoints,
    verify_with_checkpoints,
)
from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.commands.users import _by_option, operator_of
from anpr_stream.stream.security import KafkaSecurity, KafkaSecurityError

EXIT_INTACT = 0
EXIT_BROKEN = 1
EXIT_USAGE = 2

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    audit = subparsers.add_parser("audit", help="the append-only audit log and its signed checkpoints")
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    keygen = commands.add_parser(
        "keygen",
        help="make the audit signer's Ed25519 key pair",
        description="Write a new Ed25519 private key (PEM, mode 0400: keep it on the signer's host only, never in the "
        "database) and its public key (give it to the DPO and auditors). Existing files are never overwritten.",
    )
    keygen.add_argument("--private-key", required=True, type=Path, metavar="PATH")
    keygen.add_argument("--public-key", required=True, type=Path, metavar="PATH")
    keygen.set_defaults(handler=_keygen)

    checkpoint = commands.add_parser(
        "checkpoint",
        help="sign the audit chain's new rows into a checkpoint (directory and Kafka topic)",
        description="Sign the (id, row_hash) of every audit row appended since the last checkpoint, linked to that "
        "checkpoint, into a new file of the append-only directory and onto the checkpoint topic. With --every, run "
        "as the signer: checkpoint at that interval and as soon as a purge commits. The signer refuses to continue a "
        "log that no longer matches its last checkpoint.",
    )
    checkpoint.add_argument("--private-key", type=Path, metavar="PATH",
                            default=config.path_value("ANPR_AUDIT_SIGNING_KEY"),
                            help="the signer's private key (default: $ANPR_AUDIT_SIGNING_KEY)")  # fmt: skip
    checkpoint.add_argument("--dir", type=Path, metavar="DIR", default=config.path_value("ANPR_AUDIT_CHECKPOINT_DIR"),
                            help="the checkpoint directory (default: $ANPR_AUDIT_CHECKPOINT_DIR)")  # fmt: skip
    checkpoint.add_argument("--every", type=float, metavar="SECONDS",
                            help="run as the signer: a checkpoint at this interval and after every purge")  # fmt: skip
    checkpoint.add_argument(
        "--no-kafka",
        action="store_true",
        help="do not publish to the checkpoint topic (the directory is then the only copy)",
    )
    checkpoint.set_defaults(handler=_checkpoint)

    verify = commands.add_parser(
        "verify",
        help="check the audit log's hash chain, and against the signed checkpoints (exit 0 intact, 1 broken)",
        description="Walk the audit log in id order, recompute every row's hash and its link to the row before, and "
        "with --public-key compare every row with the signed checkpoints (directory, and the topic with --kafka): "
        "a re-hashed rewrite, a truncated tail, a removed or inserted row and a checkpoint that does not verify are "
        "reported, naming the first affected row. The verification is appended to the audit log.",
    )
    verify.add_argument("--public-key", type=Path, metavar="PATH", default=config.path_value("ANPR_AUDIT_PUBLIC_KEY"),
                        help="the signer's public key (default: $ANPR_AUDIT_PUBLIC_KEY)")  # fmt: skip
    verify.add_argument(
        "--checkpoints",
        type=Path,
        metavar="DIR",
        default=config.path_value("ANPR_AUDIT_CHECKPOINT_DIR"),
        help="a copy of the checkpoint directory (default: $ANPR_AUDIT_CHECKPOINT_DIR)",
    )
    verify.add_argument("--kafka", action="store_true", help="also read the checkpoint topic (ANPR_KAFKA_BOOTSTRAP)")
    _by_option(verify)
    verify.set_defaults(handler=_verify)


def _fail(command: str, message: str, code: int = EXIT_USAGE) -> int:
    print(f"anpr-stream audit {command}: {message}", file=sys.stderr)
    return code


def _topic() -> tuple[str, str] | str:
    """(bootstrap, checkpoint topic) from the environment, or why there is none."""
    bootstrap = config.value("ANPR_KAFKA_BOOTSTRAP")
    if not bootstrap:
        return "ANPR_KAFKA_BOOTSTRAP is not set"
    return bootstrap, config.value("ANPR_TOPIC_AUDIT_CHECKPOINTS")


def _keygen(args: argparse.Namespace) -> int:
    try:
        public = generate_keys(args.private_key, args.public_key)
    except (OSError, FileExistsError) as exc:
        return _fail("keygen", str(exc))
    print(f"key id {key_id(public)}: private key {args.private_key} (keep it on the signer's host), "
          f"public key {args.public_key}")  # fmt: skip
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    if args.private_key is None or args.dir is None:
        return _fail("checkpoint", "--private-key and --dir are required (or ANPR_AUDIT_SIGNING_KEY and "
                     "ANPR_AUDIT_CHECKPOINT_DIR)")  # fmt: skip
    if args.every is not None and not 1 <= args.every <= 86400:
        return _fail("checkpoint", "--every: between 1 and 86400 seconds")
    try:
        key = load_private_key(args.private_key)
    except (OSError, ValueError, SignerError) as exc:
        return _fail("checkpoint", f"{args.private_key}: {exc}")
    publisher: TopicPublisher | None = None
    if not args.no_kafka:
        topic = _topic()
        if isinstance(topic, str):
            return _fail("checkpoint", f"{topic} (or pass --no-kafka to keep the directory as the only copy)")
        try:
            security = KafkaSecurity.from_env()
        except KafkaSecurityError as exc:
            return _fail("checkpoint", str(exc))
        publisher = TopicPublisher(*topic, security=security)
    url = database_url()
    if url is None:
        return EXIT_USAGE
    directory = CheckpointDir(args.dir)

    async def prepare() -> None:
        if publisher is not None:
            await ensure_checkpoint_topic(publisher.bootstrap, publisher.topic, security=publisher.security)

    if args.every is not None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return asyncio.run(_serve(url, key, directory, args.every, publisher, prepare))

    async def once(conn: asyncpg.Connection) -> int:
        await prepare()
        run = await sign_checkpoints(conn, key, directory, reason="manual", publisher=publisher)
        for cp in run.written:
            print(f"checkpoint {cp.seq}: {len(cp.rows)} row(s), head id {cp.head_id}, {cp.total_rows} row(s) signed "
                  f"in all -> {directory.file_for(cp.seq)}")  # fmt: skip
        if publisher is not None:
            print(f"{run.published} checkpoint(s) published to {publisher.topic}")
        return 0

    try:
        return on_connection(url, once)
    except SignerError as exc:
        return _fail("checkpoint", f"refused: {exc}", EXIT_BROKEN)


async def _serve(url: str, key: Any, directory: CheckpointDir, every: float, publisher: TopicPublisher | None,
                 prepare: Any) -> int:  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await prepare()
    log.info("audit signer: key %s, directory %s, every %.0f s, topic %s", key_id(key.public_key()), directory.path,
             every, publisher.topic if publisher else "none")  # fmt: skip
    await run_signer(url, key, directory, every, publisher, stop)
    return 0


def _verify(args: argparse.Namespace) -> int:
    try:
        by = operator_of(args)
    except UserError as exc:
        return _fail("verify", str(exc))
    if args.checkpoints is not None and args.public_key is None:
        return _fail("verify", "--checkpoints needs --public-key (a checkpoint is only worth its signature)")
    public = None
    if args.public_key is not None:
        try:
            public = load_public_key(args.public_key)
        except (OSError, ValueError, SignerError) as exc:
            return _fail("verify", f"{args.public_key}: {exc}")
    topic: tuple[str, str] | None = None
    security = KafkaSecurity()
    if args.kafka:
        if public is None:
            return _fail("verify", "--kafka needs --public-key")
        found = _topic()
        if isinstance(found, str):
            return _fail("verify", found)
        topic = found
        try:
            security = KafkaSecurity.from_env()
        except KafkaSecurityError as exc:
            return _fail("verify", str(exc))
    url = database_url()
    if url is None:
        return EXIT_USAGE
    directory = CheckpointDir(args.checkpoints) if args.checkpoints is not None else None

    async def work(conn: asyncpg.Connection) -> int:
        if public is None:
            plain = await verify_audit(conn)
            findings = [] if plain.broken is None else [Finding(plain.broken.kind, plain.broken.reason,
                                                                plain.broken.row_id)]  # fmt: skip
            result = CheckpointVerification(rows=plain.rows, last_id=plain.last_id, findings=findings, checkpoints=0,
                                            last_checkpoint=None, signed_rows=0, unsigned_tail=plain.rows,
                                            notes=[plain.note] if plain.note else [])  # fmt: skip
        else:
            result = await verify_with_checkpoints(conn, public, directory, topic, security=security)
            if topic is None and directory is None:
                result.notes.append("no checkpoints given (--checkpoints, --kafka): the hash chain alone was checked")
        _print(result, signed=public is not None)
        await _record(conn, args, by, result, public)
        return EXIT_INTACT if result.intact else EXIT_BROKEN

    return on_connection(url, work)


def _print(result: CheckpointVerification, signed: bool) -> None:
    if result.intact:
        line = f"audit log intact: {result.rows} rows" + (f", last id {result.last_id}" if result.last_id else "")
        if signed:
            line += f"; {result.signed_rows} row(s) match {result.checkpoints} signed checkpoint(s)"
        print(line)
    else:
        first = result.first
        where = f" (first affected row id {first.row_id})" if first is not None and first.row_id is not None else ""
        print(f"audit log BROKEN{where}: {first}")
        for finding in result.findings:
            if finding is not first:
                print(f"  also: {finding}")
    if not signed:
        print("note: not checked against signed checkpoints (--public-key, --checkpoints): whoever may rewrite the "
              "table could re-hash the chain unseen")  # fmt: skip
    for note in result.notes:
        print(f"note: {note}")


async def _record(conn: asyncpg.Connection, args: argparse.Namespace, by: Operator,
                  result: CheckpointVerification, public: Any) -> None:  # fmt: skip
    """Append the verification to the log it verified (after the walk: the row is not part of what was checked). A
    login that may not append (a read-only auditor's) is told, and the verification still counts."""
    first = result.first
    record = AuditRecord(
        actor=by.name, role=by.role, endpoint="admin.audit.verify", allowed=True,
        parameters={
            "intact": result.intact, "checkpoints_dir": str(args.checkpoints) if args.checkpoints else None,
            "kafka": bool(args.kafka), "key_id": key_id(public) if public is not None else None,
            "checkpoints": result.checkpoints, "signed_rows": result.signed_rows, "last_id": result.last_id,
            "first_affected_row": first.row_id if first is not None else None,
        },
        reason=None if first is None else str(first)[:500], result_count=result.rows,
    )  # fmt: skip
    try:
        await append_audit(conn, record)
    except asyncpg.InsufficientPrivilegeError as exc:
        print(f"note: this verification was not recorded in the audit log: {exc}", file=sys.stderr)
