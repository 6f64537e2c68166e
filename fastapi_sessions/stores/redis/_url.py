"""Store URLs for `RedisStore`: parsed, checked, and turned into the client they name."""

import ssl
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.stores._url import Bool, Choice, Float, Int, StoreUrl, Text
from fastapi_sessions.stores.redis._resp import RespClient

__all__ = ["RedisUrl"]

_DRIVERS = ("builtin", "redis-py")
_OPTIONS = {
    "prefix": Text(),
    "socket_timeout": Float(positive=True),
    "socket_connect_timeout": Float(positive=True),
    "max_connections": Int(minimum=1),
    "db": Int(),
    "sentinel_password": Text(),
    "ssl_cert_reqs": Choice(("required", "optional", "none")),
    "ssl_ca_certs": Text(),
    "ssl_certfile": Text(),
    "ssl_keyfile": Text(),
    "ssl_check_hostname": Bool(),
    "driver": Choice(_DRIVERS),
}


class RedisUrl:
    """A store URL taken apart and checked; builds the client it names.

    The scheme says the kind: ``redis://`` one server, ``redis+sentinel://`` a Sentinel-managed
    master, ``redis+cluster://`` a Cluster; ``rediss`` instead of ``redis`` for TLS.
    """

    def __init__(self, url: str) -> None:
        config = self._config = StoreUrl(url, "RedisStore")
        self.kind = config.scheme.partition("+")[2]
        self.tls = config.scheme.startswith("rediss")
        self.username = config.username
        self.password = config.password
        self.hosts = config.hosts(26379 if self.kind == "sentinel" else 6379)
        self.hosts_text = ",".join(f"{host}:{port}" for host, port in self.hosts)
        self.options: dict[str, Any] = config.options(_OPTIONS)[0]
        if "driver" in self.options and self.kind:
            raise self.error(f"driver must be one of {', '.join(_DRIVERS)}, and only on redis:// and rediss:// URLs")
        path = unquote(config.path).strip("/")
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
        return self._config.error(problem)

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
