"""docs/deployment.md and docs/troubleshooting.md show what tests/test_deployment.py runs."""

import re
from pathlib import Path

from tests.deploy.servers import NGINX_SITE, Uvicorn

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def blocks(page: str, lang: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.M | re.S)


def test_the_page_shows_the_nginx_configuration_the_test_runs() -> None:
    assert blocks("deployment.md", "nginx")[0] == NGINX_SITE.read_text(encoding="utf-8")


def test_the_pages_start_uvicorn_with_the_proxy_options_the_test_uses(tmp_path: Path) -> None:
    command = " ".join(Uvicorn(tmp_path, "memory://", unix_socket=True).command())
    options = "--proxy-headers --forwarded-allow-ips=127.0.0.1"
    assert options in command
    for page in ("deployment.md", "troubleshooting.md"):
        starts = [line for block in blocks(page, "(?:sh|ini)") for line in block.replace("\\\n", " ").splitlines()]
        uvicorn = [" ".join(line.split()) for line in starts if "uvicorn myapp:app" in line]
        assert uvicorn and all(options in line for line in uvicorn), (page, uvicorn)


def test_no_page_recommends_nginx_host_without_the_port() -> None:
    for page in DOCS.glob("**/*.md"):
        for line in page.read_text(encoding="utf-8").splitlines():
            if "proxy_set_header Host $host" in line:
                assert "rather than $host" in line, f"{page.name}: {line}"
