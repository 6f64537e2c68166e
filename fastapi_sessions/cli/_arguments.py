"""The command line's arguments, help and exit statuses."""

import argparse

from fastapi_sessions.__version__ import __version__

__all__ = ["FAILURE", "OK", "USAGE", "build_parser"]

OK = 0
"""The command did what was asked."""
FAILURE = 1
"""Invalid settings, an unreachable store, a store that cannot count, a session that was not there to revoke."""
USAGE = 2
"""The command line itself is wrong (argparse's own status), or ``--env-file`` names no file."""

PROG = "fastapi-sessions"

_DESCRIPTION = """\
Look after the sessions of a fastapi_sessions application: check its settings and store, count,
clean up, list and revoke sessions. Reads the same SESSION_* environment variables, and the same
.env file in the working directory, as the application."""

_EPILOG = """\
exit status:
  0  success
  1  failure: invalid settings, store unreachable, nothing to revoke (the message says what to fix)
  2  usage error

Documentation: docs/cli.md."""

_STORE_NOTE = "With SESSION_STORE_URL=memory:// the store is this command's own process memory: it is empty."


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``fastapi-sessions``: the global options, then one subcommand."""
    # The global options are accepted after the subcommand too; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, default=None)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=description,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    command(
        "check",
        "check the settings, and that the store answers",
        "Validate the settings as the application does at startup, open the store and read from it.\n"
        "Exits 1, naming the variable to fix, when either fails. Prints no secret.",
    )
    command(
        "cleanup",
        "remove expired sessions from the store now",
        "Delete the records past their expiry now, and print how many. SQLite and PostgreSQL also do\n"
        "this in the background; Redis and MongoDB expire records themselves (Redis: always 0).",
    )
    stats = command(
        "stats",
        "count the live sessions in the store",
        "Print how many live sessions the store holds. What this costs depends on the store (Redis scans\n"
        f"every key of its database): docs/cli.md says. {_STORE_NOTE}",
    )
    stats.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    sessions = command(
        "sessions",
        "list a user's live sessions",
        "List the live sessions of USER, oldest first: handle, created, last seen, IP and user agent.\n"
        "Read-only: no record is changed or removed. Times are UTC.",
    )
    sessions.add_argument("user", metavar="USER", help="the user ID, as the application passed it to login()")
    sessions.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    revoke = command(
        "revoke",
        "revoke one session of a user, or all of them",
        "Revoke the session HANDLE of USER (handles are listed by the sessions command), or with --all\n"
        "every session of USER. The devices holding them are logged out on their next request.",
    )
    revoke.add_argument("user", metavar="USER", help="the user ID")
    revoke.add_argument("handle", metavar="HANDLE", nargs="?", help="the handle of the session to revoke")
    revoke.add_argument("--all", action="store_true", help="revoke every session of USER")
    revoke.add_argument("--keep", metavar="HANDLE", help="with --all: leave this session alone")
    revoke.set_defaults(usage_error=revoke.error)
    secret = command(
        "generate-secret",
        "print a new random secret for SESSION_SECRET_KEY",
        "Print a new random value for SESSION_SECRET_KEY (64 characters, 288 bits), or with\n"
        "--encryption-key a key for SESSION_ENCRYPTION_KEYS. Reads no settings.",
    )
    secret.add_argument(
        "--encryption-key",
        action="store_true",
        help="print a key for SESSION_ENCRYPTION_KEYS instead (32 random bytes, URL-safe base64)",
    )
    return parser


def _global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        default=default,
        help="read SESSION_* variables from this file instead of ./.env (the environment still wins)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="also print the library's log lines of level info",
    )
