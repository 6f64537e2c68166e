"""A PostgreSQL server of a test's own, to stop and start again mid-test.

The cluster is created with ``initdb`` in a temporary directory and listens on a free loopback port,
with its Unix socket in that directory. ``initdb`` and ``postgres`` refuse to run as root, so as root
they run as the ``postgres`` system user.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.support import free_port, unavailable

BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


class PgServer:
    """A throwaway PostgreSQL cluster: `start`, `stop` (immediate, like a crash), `start` again on the same port."""

    def __init__(self) -> None:
        if not (BIN / "initdb").exists():
            unavailable(f"no PostgreSQL binaries in {BIN} (set PG_BIN)")
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres and shutil.which("runuser") is None:
            unavailable("running as root needs runuser to start PostgreSQL as the postgres user")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="fastapi-sessions-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        command = [str(BIN / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr or result.stdout}\n{log}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        """Stop at once, as a crash would: connections are cut, nothing is flushed politely."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                self.stop()
            except RuntimeError:
                # pg_ctl could not stop it: end the postmaster by its process id.
                try:
                    os.kill(pid, signal.SIGQUIT)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "PgServer":
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.destroy()
