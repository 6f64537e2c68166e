"""The processes of a deployment: ``uvicorn --workers 2``, nginx in front of it, and headless Chromium.

Each starts in a directory of the test's own, waits on a condition (a port that answers, a log line)
rather than a fixed time, and is stopped by its process ID, its process group killed if it does not
exit in time. A missing nginx, Chromium or chromedriver skips the test, and fails it in CI.
"""

import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from string import Template
from typing import IO, TYPE_CHECKING, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import SECRET, port_open, unavailable

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

ROOT = Path(__file__).resolve().parent.parent.parent
NGINX_SITE = ROOT / "examples" / "deploy" / "nginx.conf"
LOG_CONFIG = ROOT / "examples" / "logging.json"
APP = "tests.deploy.app:app"
HOSTNAME = "app.test"
"""The site's name: Chromium resolves it to 127.0.0.1, yet treats it as any host of the internet (not localhost)."""
DEADLINE = 30.0
STARTED = "Application startup complete."

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """Call ``check()`` until it returns something other than ``None`` or ``False``; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def binary(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((path for path in candidates if os.access(path, os.X_OK)), None)
    if found is None:
        unavailable(f"{name} is not installed: the deployment tests need it (apt-get install {name})")
    return found


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process, then SIGKILL its process group (it leads one of its own) if it outlives ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    # The workers of a supervisor that was killed have no one to stop them: their group goes too.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def self_signed_certificate(directory: Path, hostname: str = HOSTNAME) -> tuple[Path, Path]:
    """A certificate for ``hostname``, signed by its own key; returns the certificate and key files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "site.pem", directory / "site.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class Uvicorn:
    """``uvicorn --workers 2`` serving tests/deploy/app.py, as a production server would start it.

    Args:
        directory: Its working directory (no ``.env`` in it) and where its log goes.
        store_url: ``SESSION_STORE_URL``, a store all workers share.
        proxy_headers: Start with ``--proxy-headers --forwarded-allow-ips=127.0.0.1``; otherwise with
            neither option, as a deployment that left them out.
        unix_socket: Listen on a unix socket in ``directory``; otherwise on a loopback port bound
            here and handed over with ``--fd``, so no other test can take it meanwhile.
    """

    def __init__(
        self,
        directory: Path,
        store_url: str,
        *,
        proxy_headers: bool = True,
        unix_socket: bool = False,
        workers: int = 2,
    ) -> None:
        self.directory = directory
        self.store_url = store_url
        self.proxy_headers = proxy_headers
        self.unix_socket = unix_socket
        self.workers = workers
        self.log_file = directory / "uvicorn.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None
        self._log: IO[bytes] | None = None

    @property
    def upstream(self) -> str:
        """Where nginx reaches it: ``unix:/path`` or ``127.0.0.1:port``."""
        if self.unix_socket:
            return f"unix:{self.directory / 'uvicorn.sock'}"
        assert self._listener is not None
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", APP, "--app-dir", str(ROOT), "--workers", str(self.workers)]
        command += ["--log-config", str(LOG_CONFIG), "--timeout-graceful-shutdown", "5"]
        if self.proxy_headers:
            command += ["--proxy-headers", "--forwarded-allow-ips=127.0.0.1"]
        if self.unix_socket:
            return [*command, "--uds", str(self.directory / "uvicorn.sock")]
        assert self._listener is not None
        return [*command, "--fd", str(self._listener.fileno())]

    def start(self) -> "Uvicorn":
        """Start it and wait until every worker has run the app's startup."""
        fds: list[int] = []
        if not self.unix_socket:
            self._listener = socket.socket()
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(128)
            fds.append(self._listener.fileno())
        env = {name: value for name, value in os.environ.items() if not name.startswith("SESSION_")}
        env.update(SESSION_SECRET_KEY=SECRET, SESSION_STORE_URL=self.store_url, PYTHONPATH=str(ROOT))
        self._log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.directory,
            env=env,
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_until_started(self.workers)
        return self

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def wait_until_started(self, count: int) -> None:
        """Wait until ``count`` workers in all have completed their startup since the server started."""

        def started() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"uvicorn exited with {self.process.returncode}:\n{self.log()}")
            return self.log().count(STARTED) >= count

        try:
            wait_for(started, f"{count} uvicorn workers to start")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the log:\n{self.log()}") from None

    def worker_pids(self) -> set[int]:
        """The process IDs of the workers the supervisor runs now (its children spawned for serving)."""
        assert self.process is not None
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            return set()
        workers = set()
        for child in map(int, children):
            try:
                command_line = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in command_line:  # not multiprocessing's resource tracker
                workers.add(child)
        return workers

    def stop(self) -> None:
        try:
            if self.process is not None:
                stop(self.process)
        finally:
            if self._listener is not None:
                self._listener.close()
            if self._log is not None:
                self._log.close()


class Nginx:
    """nginx, not daemonized, with its own prefix directory, pid file and error log, serving ``site``.

    Args:
        directory: The prefix directory: configuration, pid file, logs, temporary files.
        site: The site configuration (examples/deploy/nginx.conf with its placeholders filled in),
            included in the ``http`` block of a main configuration written here.
        port: The port ``site`` listens on.
    """

    def __init__(self, directory: Path, site: str, port: int) -> None:
        self.directory = directory
        self.site = site
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def main_config(self) -> str:
        prefix = self.directory
        temporary = "\n".join(
            f"    {kind}_temp_path {prefix / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # Workers of a root master run as nobody by default, who cannot reach a socket in this directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} notice;\n"
            "events { worker_connections 128; }\n"
            "http {\n"
            f"    access_log {prefix / 'access.log'};\n"
            f"{temporary}\n"
            f"    include {prefix / 'site.conf'};\n"
            "}\n"
        )

    def start(self) -> "Nginx":
        nginx = binary("nginx", "/usr/sbin/nginx")
        (self.directory / "temp").mkdir(parents=True, exist_ok=True)
        (self.directory / "site.conf").write_text(self.site)
        config = self.directory / "nginx.conf"
        config.write_text(self.main_config())
        error_log = self.directory / "error.log"
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.directory), "-c", str(config), "-e", str(error_log)],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def listening() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                log = error_log.read_text() if error_log.exists() else ""
                raise AssertionError(f"nginx exited with {self.process.returncode}:\n{log}")
            return port_open("127.0.0.1", self.port, timeout=0.2)

        wait_for(listening, f"nginx to listen on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def site_config(
    *, port: int, upstream: str, certificate: Path | None, key: Path | None, edit: Callable[[str], str] = str
) -> str:
    """examples/deploy/nginx.conf with its placeholders filled in, after ``edit`` changed the template.

    ``certificate`` and ``key`` ``None`` leave TLS out: the ``ssl`` of ``listen`` and the certificate lines.
    """
    template = edit(NGINX_SITE.read_text(encoding="utf-8"))
    if certificate is None:
        template = replace(template, "listen ${PORT} ssl;", "listen ${PORT};")
        template = re.sub(r"^ *ssl_certificate(_key)? .*\n", "", template, flags=re.M)
    values = {"PORT": str(port), "SERVER_NAME": HOSTNAME, "UPSTREAM": upstream}
    if certificate is not None and key is not None:
        values.update(CERTIFICATE=str(certificate), CERTIFICATE_KEY=str(key))
    site = Template(template).safe_substitute(values)
    assert "${" not in re.sub(r"(?m)^#.*$", "", site), site  # every placeholder outside the comments is filled
    return site


def replace(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced, which must be there (so a changed template fails the test, not silently)."""
    assert old in text, f"{old!r} is no longer in examples/deploy/nginx.conf"
    return text.replace(old, new)


@contextmanager
def chromium(directory: Path) -> Iterator["WebDriver"]:
    """Headless Chromium through Selenium, with a profile in ``directory``, resolving `HOSTNAME` to 127.0.0.1.

    The certificate is self-signed, so certificate errors are ignored; nothing else of TLS is relaxed.
    """
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed: pip install -e '.[dev]'")
    browser_binary = binary("chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
    driver_binary = binary("chromedriver", "/usr/bin/chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser_binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the sandbox cannot start as root, nor in most containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-proxy-server",
        "--ignore-certificate-errors",
        f"--host-resolver-rules=MAP {HOSTNAME} 127.0.0.1",
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        f"--user-data-dir={directory / 'profile'}",
    ):
        options.add_argument(argument)
    service = Service(driver_binary, log_output=str(directory / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(DEADLINE)
        driver.set_script_timeout(DEADLINE)
        yield driver
    finally:
        driver.quit()
