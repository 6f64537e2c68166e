"""Code of the documentation, run as a module, so the test suite can use what a page defines."""

import re
import sys
import types
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def example_namespace(page: str, defines: str) -> dict[str, Any]:
    """The namespace of the first ``python`` block of ``docs/<page>`` that defines ``defines``, run as a module."""
    for code in _BLOCK.findall((DOCS / page).read_text(encoding="utf-8")):
        if re.search(rf"^(class|def|async def) {defines}\b", code, re.MULTILINE):
            module = types.ModuleType(f"docs_{Path(page).stem.replace('-', '_')}")
            sys.modules[module.__name__] = module  # dataclasses look their module up
            exec(compile(code, str(DOCS / page), "exec"), module.__dict__)
            return module.__dict__
    raise LookupError(f"no python block of docs/{page} defines {defines}")
