"""Every Python block of the documentation runs, and the reference pages match the code.

Each ```python block of ``docs/**/*.md`` and of the README runs as a module of its own. A block that
leaves a FastAPI ``app`` behind is then exercised: its startup and shutdown run, its OpenAPI schema
renders, and every HTTP route is requested once (in the order declared, sharing one cookie jar); no
request may fail with a 5xx. An HTML comment on the line before a block changes how it runs:

- ``<!-- docs-test: continue -->`` runs the block in the namespace of the previous block of the page,
  for pages that build one example step by step;
- ``<!-- docs-test: skip: <reason> -->`` skips it, for a fragment that cannot run on its own or a
  block that needs a server (Redis, PostgreSQL, MongoDB). Use sparingly.

Blocks run with ``SESSION_SECRET_KEY`` set, every other ``SESSION_*`` variable unset, and a temporary
working directory (no ``.env`` is read, files a block writes land there). Pages are found when tests
are collected, so a new page is tested as soon as it exists.
"""

import asyncio
import inspect
import os
import re
import subprocess
import sys
import time
import tomllib
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr

import fastapi_sessions
from fastapi_sessions import SessionSettings, SessionStore, exceptions, guards
from tests import test_store_contract
from tests.support import SECRET, client

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted([*DOCS.glob("*.md"), *DOCS.glob("*/*.md")]), ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<action>skip|continue)\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")


@dataclass
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the first line of code
    lang: str
    code: str
    action: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, each with the docs-test directive on the line before it."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        directive = _DIRECTIVE.match(previous)
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        start = index - len(body) + 1
        blocks.append(
            Block(
                page,
                start,
                opening["lang"].lower(),
                "\n".join(body) + "\n",
                directive["action"] if directive else None,
                (directive["reason"] or "") if directive else "",
            )
        )
        index += 1
    return blocks


def python_examples() -> list[Any]:
    """One pytest param per runnable example: a block plus the blocks that continue it."""
    params: list[Any] = []
    for page in PAGES:
        if not page.exists():
            continue
        chains: list[list[Block]] = []
        skipped: list[Block] = []
        for block in read_blocks(page):
            if block.lang not in {"python", "py"}:
                continue
            if block.action == "skip":
                skipped.append(block)
            elif block.action == "continue" and chains:
                chains[-1].append(block)
            else:
                chains.append([block])
        for chain in chains:
            params.append(pytest.param(chain, id=chain[0].where))
        for block in skipped:
            reason = block.reason or "marked docs-test: skip"
            params.append(pytest.param([block], id=block.where, marks=pytest.mark.skip(reason=reason)))
    return params


@pytest.fixture
def docs_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("SESSION_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run_blocks(docs_env: Path) -> Iterator[Callable[[list[Block]], ModuleType]]:
    """Runs blocks as one module; the module is registered while the test runs (Pydantic looks it up)."""
    names: list[str] = []

    def run(chain: list[Block]) -> ModuleType:
        name = f"docs_example_{len(names)}_{chain[0].page.stem.replace('-', '_')}_{chain[0].line}"
        names.append(name)
        module = ModuleType(name)
        module.__file__ = str(chain[0].page)
        sys.modules[name] = module
        for block in chain:
            # Leading newlines keep a traceback's line numbers those of the page.
            source = "\n" * (block.line - 1) + block.code
            exec(compile(source, str(block.page), "exec"), module.__dict__)
            app = module.__dict__.get("app")
            if isinstance(app, FastAPI):
                exercise(app, block)
        return module

    yield run
    for name in names:
        sys.modules.pop(name, None)


def exercise(app: FastAPI, block: Block) -> None:
    """Start ``app``, render its OpenAPI schema, and request each HTTP route once; none may answer 5xx."""
    try:
        _exercise(app, block)
    finally:
        # A later block of the page may still add middleware or exception handlers, as a reader would
        # before serving: let the app build its middleware stack afresh.
        app.middleware_stack = None
        app.openapi_schema = None


def _exercise(app: FastAPI, block: Block) -> None:
    with client(app) as browser:
        if app.openapi_url:
            assert browser.get(app.openapi_url).status_code == 200, block.where
        for route in app.routes:
            if not isinstance(route, APIRoute):
                continue
            try:
                path = route.url_path_for(route.name, **{name: "1" for name in route.param_convertors})
            except Exception:  # a path parameter that "1" does not fit (a UUID, say): leave the route out
                continue
            for method in sorted((route.methods or set()) - {"HEAD"}):
                response = browser.request(method, str(path), follow_redirects=False)
                assert response.status_code < 500, f"{block.where}: {method} {path}: {response.status_code}"


@pytest.mark.parametrize("chain", python_examples())
def test_python_block_runs(chain: list[Block], run_blocks: Callable[[list[Block]], ModuleType]) -> None:
    run_blocks(chain)


RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed next to the interpreter")
@pytest.mark.parametrize("chain", python_examples())
def test_python_block_follows_the_house_style(chain: list[Block]) -> None:
    """Examples pass ``ruff check`` and ``ruff format`` like the code (imports may follow code in a chain)."""
    code = "\n\n".join(block.code for block in chain)
    filename = str(ROOT / f"{chain[0].page.stem.replace('-', '_')}_example.py")
    check = [str(RUFF), "check", "--quiet", "--output-format", "concise", "--ignore", "E402,I001"]
    for command in (
        [*check, "--stdin-filename", filename, "-"],
        [str(RUFF), "format", "--diff", "--stdin-filename", filename, "-"],
    ):
        result = subprocess.run(command, input=code, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 0, f"{chain[0].where}:\n{result.stdout}{result.stderr}"


def test_directives_are_attached_to_python_blocks() -> None:
    """A directive that names no Python block below it is a typo or a leftover."""
    for page in PAGES:
        if not page.exists():
            continue
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if "docs-test" not in line:
                continue
            assert _DIRECTIVE.match(line), f"{page.name}:{number + 1}: malformed directive {line!r}"
            following = next((item for item in lines[number + 1 :] if item.strip()), "")
            opening = _FENCE.match(following)
            assert opening and opening["lang"] in {"python", "py"}, f"{page.name}:{number + 1}: no python block"


# The settings reference.


def _env_value(value: Any) -> str:
    """A field's default as it would be written in an environment variable."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "empty"
    return str(value)


def _settings_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in (DOCS / "settings.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `SESSION_"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_settings_page_lists_every_field() -> None:
    rows = _settings_rows()
    fields = SessionSettings.model_fields
    assert sorted(rows) == sorted(f"SESSION_{name.upper()}" for name in fields)
    for name, field in fields.items():
        cells = rows[f"SESSION_{name.upper()}"]
        assert cells[1] == f"`{name}`", cells
        default = field.get_default(call_default_factory=True)
        expected = "required" if field.is_required() else f"`{_env_value(default)}`"
        assert cells[3].startswith(expected), f"{name}: the page says {cells[3]!r}, the code {expected!r}"


def _type_words(annotation: Any) -> list[str]:
    """Words the Type column must contain for ``annotation``."""
    if typing.get_origin(annotation) is typing.Literal:
        return [f"`{value}`" for value in typing.get_args(annotation)]
    if typing.get_origin(annotation) is list:
        return ["list of", *_type_words(typing.get_args(annotation)[0])]
    arguments = typing.get_args(annotation)
    members = [arg for arg in arguments if arg is not type(None)]
    if members:  # X | Y, X | None
        optional = ["unset"] if type(None) in arguments else []
        return [word for member in members for word in _type_words(member)] + optional
    if annotation is SecretStr:
        return ["str (secret)"]
    return [annotation.__name__]


def test_settings_page_types_match_the_code() -> None:
    rows = _settings_rows()
    for name, field in SessionSettings.model_fields.items():
        cell = rows[f"SESSION_{name.upper()}"][2]
        for word in _type_words(field.annotation):
            assert word in cell, f"{name}: {word!r} not in {cell!r}"


def test_env_example_lists_every_variable() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = re.findall(r"^(SESSION_[A-Z_]+)=", text, flags=re.MULTILINE)
    assert sorted(listed) == sorted(f"SESSION_{name.upper()}" for name in SessionSettings.model_fields)


def _env_example_defaults() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return dict(re.findall(r"^(SESSION_[A-Z_]+)=(.*)$", text, flags=re.MULTILINE))


def test_env_example_values_are_the_defaults() -> None:
    for variable, value in _env_example_defaults().items():
        field = SessionSettings.model_fields[variable.removeprefix("SESSION_").lower()]
        if field.is_required():
            assert value == "", variable
            continue
        default = field.get_default(call_default_factory=True)
        assert value == ("" if default in (None, []) else _env_value(default)), variable


def test_env_example_copied_to_env_loads(docs_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    (docs_env / ".env").write_text(text.replace("SESSION_SECRET_KEY=\n", f"SESSION_SECRET_KEY={SECRET}\n"))
    monkeypatch.delenv("SESSION_SECRET_KEY")
    settings = SessionSettings.load()
    assert settings.secret_key.get_secret_value() == SECRET
    assert settings.domain is None and settings.max_sessions_per_user is None and settings.encryption_keys == []


# Pages whose claims a test checks beyond running their blocks.


def _page_module(run: Callable[[list[Block]], ModuleType], page: str, defines: str) -> ModuleType:
    """Run the example chain of ``page`` whose blocks define ``defines``, and return its namespace."""
    for param in python_examples():
        chain: list[Block] = param.values[0]
        if chain[0].page == DOCS / page and any(
            re.search(rf"^(class|def|async def) {defines}\b|^{defines} =", b.code, re.M) for b in chain
        ):
            return run(chain)
    raise AssertionError(f"no example in {page} defines {defines}")


def test_example_store_passes_the_contract(run_blocks: Callable[[list[Block]], ModuleType]) -> None:
    """The store written out in writing-a-store.md passes the contract suite every store runs."""
    module = _page_module(run_blocks, "writing-a-store.md", "DictStore")
    factory: type[SessionStore] = module.DictStore
    ran: list[str] = []

    async def contract() -> None:
        for name, test in inspect.getmembers(test_store_contract, inspect.iscoroutinefunction):
            if not name.startswith("test_"):
                continue
            cases: list[dict[str, Any]] = [{}]
            for mark in getattr(test, "pytestmark", []):
                if mark.name == "parametrize":
                    argname, values = mark.args
                    cases = [{argname: value} for value in values]
            for case in cases:
                async with factory() as store:
                    await test(store, **case)
            ran.append(name)

    asyncio.run(contract())
    assert len(ran) >= 15


def test_guards_page_claims(run_blocks: Callable[[list[Block]], ModuleType]) -> None:
    """The statuses, bodies and headers guards.md describes are what its example app answers."""
    text = (DOCS / "guards.md").read_text(encoding="utf-8")
    module = _page_module(run_blocks, "guards.md", "PartlyLoggedIn")
    now = time.time()
    module.sessions.clock = lambda: now

    def check(response: Any, status: int, detail: str | None = None) -> None:
        assert response.status_code == status, response.text
        if detail is not None:
            assert response.json() == {"detail": detail}
            assert f'`{{"detail": "{detail}"}}`' in text, detail

    with client(module.app) as browser:
        response = browser.get("/me")
        check(response, 401, "Not authenticated")
        assert f"WWW-Authenticate: {response.headers['www-authenticate']}" in text
        assert browser.post("/login").json() == {"pending": ["totp"]}
        check(browser.get("/me"), 401, "Authentication incomplete")
        assert browser.post("/login/totp", json={"code": "000000"}).json() == {"done": False}
        assert browser.post("/login/totp", json={"code": "123456"}).json() == {"done": True}
        check(browser.get("/me"), 200)
        check(browser.get("/reports"), 200)
        check(browser.get("/admin/users"), 403, "Not enough privileges")
        check(browser.post("/account/email"), 200)
        now += 301
        check(browser.post("/account/email"), 403, "Recent authentication required")
        browser.post("/reauthenticate", json={"password": "wrong"})
        check(browser.post("/account/email"), 403, "Recent authentication required")
        browser.post("/reauthenticate", json={"password": "wonderland"})
        check(browser.post("/account/email"), 200)
        browser.post("/logout")
    with client(module.app) as browser:
        response = browser.get("/me", headers={"Accept": "text/html"}, follow_redirects=False)
        assert response.status_code == 303, (response.status_code, response.text)
        assert response.headers["location"] == "/login?next=/me"
    for detail in ["CSRF check failed: missing or wrong token", "CSRF check failed: cross-origin request"]:
        assert f'`{{"detail": "{detail}"}}`' in text
        assert detail in Path(guards.__file__).read_text(encoding="utf-8")


def test_guards_page_app_wide_guard_and_public_routes(run_blocks: Callable[[list[Block]], ModuleType]) -> None:
    module = _page_module(run_blocks, "guards.md", "dashboard")
    with client(module.app) as browser:
        assert browser.get("/dashboard").status_code == 401
        assert browser.get("/health").json() == {"status": "ok"}
        assert browser.get("/docs").status_code == 200
        assert browser.post("/login").json() == {"user": "1"}
        assert browser.get("/dashboard").json() == {"page": "dashboard"}


# Links between pages.

_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def test_links_resolve() -> None:
    """Relative links name files and headings that exist (a page still to come must be listed in the index)."""
    announced = {(DOCS / match["target"]).resolve() for match in _LINK.finditer((DOCS / "index.md").read_text())}
    for page in PAGES:
        if not page.exists():
            continue
        for match in _LINK.finditer(page.read_text(encoding="utf-8")):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            if not resolved.exists():
                assert resolved in announced, f"{page.name}: broken link {target}"
                continue
            if anchor and resolved.suffix == ".md":
                assert anchor in _anchors(resolved), f"{page.name}: no heading for {target}"


def test_troubleshooting_log_lines_exist() -> None:
    """Each log line troubleshooting.md quotes is still logged by the package, word for word."""
    # The sources of the package imported, which is not ROOT's when the suite runs against an installed one.
    package = Path(fastapi_sessions.__file__).parent
    source = "".join(path.read_text(encoding="utf-8") for path in package.rglob("*.py"))
    rows = re.findall(
        r"^\| (?:INFO|WARNING|ERROR) \| `([^`]+)`", (DOCS / "troubleshooting.md").read_text(encoding="utf-8"), re.M
    )
    assert len(rows) >= 10
    for message in rows:
        for fragment in re.split(r"<[^>]*>|\b\d+\b|\bN\b|'x'|\.\.\.|\b(?:idle|absolute)\b", message):
            fragment = fragment.strip(" :()")
            if len(fragment) >= 8:
                assert fragment in source, f"{message!r}: {fragment!r} is logged nowhere"


def test_getting_started_lists_every_extra() -> None:
    """The install section names each extra of pyproject.toml that users install, and no other."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = set(project["optional-dependencies"]) - {"demo", "dev", "docs"}  # the repository's own
    text = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    named = set(re.findall(r"pip install '[\w-]+\[(\w+)\]'", text))
    assert named == extras


# The documentation site.


def test_api_reference_documents_every_public_name() -> None:
    """Each name ``fastapi_sessions`` exports has a ``::: fastapi_sessions.<name>`` entry in docs/reference/."""
    text = "".join(page.read_text(encoding="utf-8") for page in sorted((DOCS / "reference").glob("*.md")))
    documented = set(re.findall(r"^::: fastapi_sessions\.(\w+)$", text, flags=re.M))
    if "exceptions" in documented:  # the module's page documents every class in it
        documented |= {name for name in dir(exceptions) if isinstance(getattr(exceptions, name), type)}
    assert documented >= set(fastapi_sessions.__all__) - {"__version__"}
