"""Store URLs for `RedisStore`: parsed, checked, and turned into the client they name."""

import math
import ssl
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.stores.resp import RespClient

__all__ = ["RedisUrl", "redact"]

_SCHEMES = {
    "redis": ("", False),
    "rediss": ("", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_FLOAT_OPTIONS = ("socket_timeout", "socket_connect_timeout")
_TEXT_OPTIONS = ("prefix", "sentinel_password", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_OPTIONS = (
    *_FLOAT_OPTIONS,
    *_TEXT_OPTIONS,
    "max_connections",
    "db",
    "ssl_cert_reqs",
    "ssl_check_hostname",
    "driver",
)
_DRIVERS = ("builtin", "redis-py")
_CERT_REQS = ("required", "optional", "none")


class RedisUrl:
    """A store URL taken apart and checked; builds the client it names."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.safe_url = redact(url)
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise self.error(f"unknown scheme {scheme!r}; use one of " + ", ".join(f"{name}://" for name in _SCHEMES))
        self.kind, self.tls = _SCHEMES[scheme]
        userinfo, _, hosts = parts.netloc.rpartition("@")
        username, has_password, password = userinfo.partition(":")
        self.username = unquote(username) or None
        self.password = unquote(password) if has_password else None
        default_port = 26379 if self.kind == "sentinel" else 6379
        self.hosts = [self._host_port(item, default_port) for item in (hosts or "localhost").split(",")]
        self.hosts_text = ",".join(f"{host}:{port}" for host, port in self.hosts)
        self.options: dict[str, Any] = self._options(parts.query)
        path = unquote(parts.path).strip("/")
        self.service_name = ""
        query_db = {"db": self.options["db"]} if "db" in self.options else {}
        self.db = self.options.pop("db", 0)
        if self.kind == "sentinel":
            if not path or "/" in path:
                raise self.error("name the Sentinel service in the path: redis+sentinel://host:26379/mymaster")
            self.service_name = path
        elif self.kind == "cluster":
            if path not in ("", "0") or self.db:
                raise self.error("Redis Cluster has only database 0; remove the database from the URL")
        else:
            if len(self.hosts) > 1:
                raise self.error("give one host, or use redis+sentinel:// or redis+cluster:// for several")
            if path and not path.isdigit():
                raise self.error(f"the path must be a database number, got {path!r}")
            if path and "db" not in query_db:
                self.db = int(path)

    def error(self, problem: str) -> SessionConfigError:
        return SessionConfigError(f"SESSION_STORE_URL {self.safe_url!r}: {problem}")

    def _host_port(self, item: str, default_port: int) -> tuple[str, int]:
        host, port = item, ""
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        elif ":" in item:
            host, _, port = item.rpartition(":")
        if not host:
            raise self.error(f"missing host in {item!r}")
        if not port:
            return unquote(host), default_port
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise self.error(f"bad port {port!r}")
        return unquote(host), int(port)

    def _options(self, query: str) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name not in _OPTIONS:
                raise self.error(f"unknown option {name!r}; the options are " + ", ".join(sorted(_OPTIONS)))
            if name in _TEXT_OPTIONS:
                options[name] = value
            elif name in _FLOAT_OPTIONS:
                options[name] = self._number(name, value, float, minimum=0.0)
            elif name == "max_connections":
                options[name] = self._number(name, value, int, minimum=1)
            elif name == "db":
                options[name] = self._number(name, value, int, minimum=0)
            elif name == "driver":
                if value not in _DRIVERS or self.kind:
                    raise self.error(
                        f"driver must be one of {', '.join(_DRIVERS)}, and only on redis:// and rediss:// URLs"
                    )
                options[name] = value
            elif name == "ssl_cert_reqs":
                if value not in _CERT_REQS:
                    raise self.error(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, got {value!r}")
                options[name] = value
            else:  # ssl_check_hostname
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise self.error(f"ssl_check_hostname must be true or false, got {value!r}")
                options[name] = value.lower() in ("true", "1", "yes")
        return options

    def _number(self, name: str, value: str, kind: type[int] | type[float], *, minimum: float) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise self.error(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(number) or number < minimum or (kind is float and number == 0):
            raise self.error(f"{name} must be positive, got {value!r}")
        return number

    def _connection_kwargs(self) -> dict[str, Any]:
        options = self.options
        kwargs: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "socket_timeout": options.get("socket_timeout", 5.0),
            "socket_connect_timeout": options.get("socket_connect_timeout", 2.0),
            # redis-py's pool that waits for a free connection serialises every checkout through one
            # lock; this one does not, and refuses (503) only past the limit, a sign of overload.
            "max_connections": options.get("max_connections", 1000),
            # One quick retry on a broken connection (a restarted server leaves dead ones in the
            # pool). Timeouts are not retried: the request's own deadline is already running.
            "retry": Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), 2, (RedisConnectionError,)),
        }
        if self.tls:
            for name in ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"):
                if name in options:
                    kwargs[name] = options[name]
        return kwargs

    def redis_client(self) -> Redis:
        (host, port) = self.hosts[0]
        return Redis(host=host, port=port, db=self.db, ssl=self.tls, **self._connection_kwargs())

    def resp_client(self) -> RespClient:
        (host, port) = self.hosts[0]
        options = self.options
        return RespClient(
            host,
            port,
            db=self.db,
            username=self.username,
            password=self.password,
            ssl_context=self._ssl_context() if self.tls else None,
            connect_timeout=options.get("socket_connect_timeout", 2.0),
            # No timer of its own unless asked: the manager puts SESSION_STORE_TIMEOUT around every store
            # call, and the client drops a connection whose reply its caller gave up on.
            command_timeout=options.get("socket_timeout"),
        )

    def _ssl_context(self) -> ssl.SSLContext:
        options = self.options
        context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
        if "ssl_certfile" in options:
            context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
        requirement = options.get("ssl_cert_reqs", "required")
        context.check_hostname = options.get("ssl_check_hostname", requirement == "required")
        context.verify_mode = {
            "required": ssl.CERT_REQUIRED,
            "optional": ssl.CERT_OPTIONAL,
            "none": ssl.CERT_NONE,
        }[requirement]
        return context

    def sentinel_client(self) -> tuple[Sentinel, Redis]:
        kwargs = self._connection_kwargs()
        sentinel_kwargs = {
            "socket_timeout": kwargs["socket_timeout"],
            "socket_connect_timeout": kwargs["socket_connect_timeout"],
            "retry": kwargs["retry"],
            "password": self.options.get("sentinel_password"),
        }
        if self.tls:
            kwargs["ssl"] = True
        sentinel = Sentinel(self.hosts, sentinel_kwargs=sentinel_kwargs, **kwargs)  # type: ignore[no-untyped-call]
        return sentinel, sentinel.master_for(self.service_name, redis_class=Redis, db=self.db)

    def cluster_client(self) -> RedisCluster:
        kwargs = self._connection_kwargs()
        kwargs["retry"] = Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), 2)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.hosts],
            ssl=self.tls,
            **kwargs,
        )


def redact(url: str) -> str:
    """The URL with its password masked, for messages."""
    scheme, sep, rest = url.partition("://")
    end = min((index for index in map(rest.find, "/?#") if index >= 0), default=len(rest))
    userinfo, at, hosts = rest[:end].rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{hosts}{rest[end:]}"
