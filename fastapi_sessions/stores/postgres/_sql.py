"""The SQL of `PostgresStore`: its table, indexes and statements, for one table name."""

import hashlib
import re

from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.stores._records import FORMAT_VERSION
from fastapi_sessions.stores.postgres._text import FORMAT_FIELD

__all__ = ["Statements"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MAX_IDENTIFIER = 63
_LIVE = "expires_at > now()"
_EXPIRY = "now() + make_interval(secs => $4)"
# A record this release may write to: a JSON object, of its format (or of the release before formats).
_WRITABLE = (
    f"jsonb_typeof(data) = 'object' AND coalesce(data ->> '{FORMAT_FIELD}', '{FORMAT_VERSION}') = '{FORMAT_VERSION}'"
)
# A record no release can read: a JSON array, string, number or null, or a format version that is no number.
_UNREADABLE = f"(jsonb_typeof(data) <> 'object' OR jsonb_typeof(data -> '{FORMAT_FIELD}') <> 'number')"


def _quote_table(table: str) -> str:
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise SessionConfigError(
            f"PostgresStore table {table!r} is not a valid name: use letters, digits and underscores "
            f"(at most {_MAX_IDENTIFIER}, not starting with a digit), optionally as schema.table"
        )
    return ".".join(f'"{part}"' for part in parts)


def _index_name(table: str, suffix: str) -> str:
    name = table.split(".")[-1]
    if len(name) + len(suffix) + 1 <= _MAX_IDENTIFIER:
        return f"{name}_{suffix}"
    digest = hashlib.blake2b(table.encode(), digest_size=4).hexdigest()
    return f"{name[:32]}_{digest}_{suffix}"


class Statements:
    """Every statement the store runs on ``table`` (optionally ``schema.table``), checked and quoted.

    Raises:
        SessionConfigError: ``table`` is not a valid name.
    """

    def __init__(self, table: str) -> None:
        quoted = self.quoted = _quote_table(table)
        digest = hashlib.blake2b(f"fastapi_sessions:{table}".encode(), digest_size=8).digest()
        self.lock_id = int.from_bytes(digest, "big", signed=True)
        """The advisory lock workers take in turn to create the table."""
        self.ddl = (
            f"CREATE TABLE IF NOT EXISTS {quoted} (key text PRIMARY KEY, data jsonb NOT NULL, user_id text NULL, "
            "version bigint NOT NULL, expires_at timestamptz NOT NULL);\n"
            f'CREATE INDEX IF NOT EXISTS "{_index_name(table, "expires_at_idx")}" ON {quoted} (expires_at);\n'
            f'CREATE INDEX IF NOT EXISTS "{_index_name(table, "user_id_idx")}" ON {quoted} (user_id) '
            "WHERE user_id IS NOT NULL;"
        )
        self.load = f"SELECT data, version, user_id FROM {quoted} WHERE key = $1 AND {_LIVE}"
        self.load_many = f"SELECT key, data, version, user_id FROM {quoted} WHERE key = ANY($1::text[]) AND {_LIVE}"
        self.create = (
            f"INSERT INTO {quoted} (key, data, user_id, version, expires_at) VALUES ($1, $2::jsonb, $3, 1, {_EXPIRY}) "
            "ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, user_id = EXCLUDED.user_id, version = 1, "
            "expires_at = EXCLUDED.expires_at"
        )
        update = (
            f"UPDATE {quoted} SET data = (data - $2::text[]) || $3::jsonb, version = version + 1, "
            f"expires_at = {_EXPIRY} WHERE key = $1 AND {_LIVE} AND {_WRITABLE}"
        )
        self.update = f"{update} RETURNING version"
        # One round trip for a compare-and-set, whatever its outcome: no row is a record that is gone
        # (or no release may write it), a row holding NULL a record at another version. Both parts
        # read the statement's snapshot, and the UPDATE only writes a row that snapshot holds, so a
        # write that happens comes with its row; one that a concurrent request got to first (it
        # waits for that request, then finds the version moved on) reads as a conflict.
        self.update_versioned = (
            f"WITH written AS ({update} AND version = $5 RETURNING version) "
            f"SELECT (SELECT version FROM written) FROM {quoted} WHERE key = $1 AND {_LIVE} AND {_WRITABLE}"
        )
        self.delete = f"DELETE FROM {quoted} WHERE key = $1 RETURNING {_LIVE}"
        # A regeneration moves the row to its new key (one UPDATE), rather than deleting it and
        # inserting another: a concurrent DELETE by user (READ COMMITTED) that finds the old row
        # locked waits, then follows the update to the new version and re-checks its WHERE there. A
        # row inserted by a transaction that commits after the DELETE's snapshot would be missed.
        self.rekey = (
            f"UPDATE {quoted} SET key = $2, data = $3::jsonb, user_id = $4, version = 1, "
            f"expires_at = now() + make_interval(secs => $5) WHERE key = $1 AND {_LIVE} RETURNING 1"
        )
        self.delete_user = f"DELETE FROM {quoted} WHERE user_id = $1 AND key IS DISTINCT FROM $2 RETURNING {_LIVE}"
        self.delete_owned = f"DELETE FROM {quoted} WHERE key = $1 AND user_id = $2 RETURNING {_LIVE}"
        self.user_keys = f"SELECT key FROM {quoted} WHERE user_id = $1 AND {_LIVE}"
        self.count = f"SELECT count(*) FROM {quoted} WHERE {_LIVE}"
        self.cleanup = (
            f"DELETE FROM {quoted} WHERE key IN "
            f"(SELECT key FROM {quoted} WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)"
        )
        self.cleanup_unreadable = (
            f"DELETE FROM {quoted} WHERE key IN "
            f"(SELECT key FROM {quoted} WHERE {_UNREADABLE} LIMIT $1 FOR UPDATE SKIP LOCKED)"
        )
