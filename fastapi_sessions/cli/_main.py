"""`main`: parse the command line, load the settings, run the command, and turn failures into messages."""

import argparse
import asyncio
import base64
import contextlib
import logging
import secrets
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from fastapi_sessions.cli._arguments import FAILURE, OK, PROG, USAGE, build_parser
from fastapi_sessions.cli._commands import Tool, check, cleanup, revoke, sessions, stats
from fastapi_sessions.exceptions import SessionConfigError, StoreError, StoreUnavailableError
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.stores._url import redact

__all__ = ["main"]

# The length SessionSettings' own advice gives: secrets.token_urlsafe(48), 64 characters.
_SECRET_BYTES = 48
_ENCRYPTION_KEY_BYTES = 32


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastapi-sessions`` with ``argv`` (the process's arguments when omitted); return the exit status."""
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else USAGE
    if args.command == "generate-secret":
        out.write(_generated(encryption_key=args.encryption_key) + "\n")
        return OK
    if args.command == "revoke" and (args.handle is None) == (not args.all):
        return _usage_error(args, "give either a HANDLE or --all")
    if args.command == "revoke" and args.keep is not None and not args.all:
        return _usage_error(args, "--keep goes with --all")
    if args.env_file is not None and not Path(args.env_file).is_file():
        err.write(f"{PROG}: error: --env-file {args.env_file}: no such file\n")
        return USAGE
    with _library_logs(err, verbose=bool(args.verbose)):
        try:
            settings = SessionSettings.load(**({"_env_file": args.env_file} if args.env_file else {}))
        except SessionConfigError as exc:
            return _failed(err, str(exc))
        try:
            return asyncio.run(_run(args, settings, out, err))
        except SessionConfigError as exc:
            return _failed(err, str(exc))
        except ImportError as exc:  # a store's driver, or cryptography for SESSION_ENCRYPTION_KEYS
            return _failed(err, str(exc))
        except StoreUnavailableError as exc:
            return _failed(
                err,
                f"the store is unreachable: {exc}\n"
                f"  - SESSION_STORE_URL={redact(settings.store_url)}: is the server up, and reachable from here?",
            )
        except StoreError as exc:
            return _failed(err, str(exc))
        except NotImplementedError as exc:
            return _failed(err, str(exc))


async def _run(args: argparse.Namespace, settings: SessionSettings, out: TextIO, err: TextIO) -> int:
    tool = Tool(settings, out)
    try:
        if args.command == "check":
            return await check(tool)
        if args.command == "cleanup":
            return await cleanup(tool)
        if args.command == "stats":
            return await stats(tool, as_json=args.json)
        if args.command == "sessions":
            return await sessions(tool, args.user, as_json=args.json)
        return await revoke(tool, args.user, args.handle, keep=args.keep, err=err)
    finally:
        await tool.close()


def _generated(*, encryption_key: bool) -> str:
    if encryption_key:  # the Fernet key format SESSION_ENCRYPTION_KEYS takes
        return base64.urlsafe_b64encode(secrets.token_bytes(_ENCRYPTION_KEY_BYTES)).decode("ascii")
    return secrets.token_urlsafe(_SECRET_BYTES)


def _usage_error(args: argparse.Namespace, message: str) -> int:
    try:
        args.usage_error(message)
    except SystemExit:
        pass
    return USAGE


def _failed(err: TextIO, message: str) -> int:
    err.write(f"{PROG}: error: {message}\n")
    return FAILURE


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"


def _not_at_open(record: logging.LogRecord) -> bool:
    # A store that cannot be reached when it opens says requests will get 503; a command instead fails on
    # its first operation, with its own message.
    return record.funcName != "warn_unavailable_at_open"


@contextlib.contextmanager
def _library_logs(err: TextIO, *, verbose: bool) -> Iterator[None]:
    """Print the library's log lines (warnings; with ``verbose``, information too) on ``err`` while the command runs."""
    logger = logging.getLogger("fastapi_sessions")
    handler = logging.StreamHandler(err)
    handler.setFormatter(_Format())
    handler.addFilter(_not_at_open)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    level = logger.level
    logger.addHandler(handler)
    if verbose and not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
