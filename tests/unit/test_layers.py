"""The layer rules the code can check by its imports (docs/architecture.md, "Layers"):

- a handler never imports storage, except the composition wiring listed in ALLOWED (each with
  its one-line reason, the same lines as in docs/architecture.md);
- adapters (outbound clients) never import handlers; the core (`social_mall/`, `flows/`)
  imports neither adapters nor handlers.
Every import counts, also one inside a function or under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ALLOWED: dict[tuple[str, str], str] = {
    ("handlers/context.py", "storage.cache"): "the Services container types the read caches bot.py gives it",
    ("handlers/context.py", "storage.uow"): "the Services container types the unit-of-work factory bot.py gives it",
    ("handlers/pay_module.py", "storage.db"): "`python -m handlers.pay_module` is a CLI: its own composition root",
    ("handlers/pay_module.py", "storage.pay_repos"): "the same CLI writes the merchant row it was given",
    ("handlers/pay_module.py", "storage.uow"): "the same CLI opens its unit of work",
}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if "." not in node.module:  # `from storage import kv`: the module storage.kv
                found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def under(names: set[str], package: str) -> set[str]:
    return {n for n in names if n == package or n.startswith(package + ".")}


def test_handlers_import_storage_only_in_the_listed_composition_wiring():
    seen = {(path.relative_to(ROOT).as_posix(), name) for path in files("handlers")
             for name in under(imports(path), "storage")}
    extra = sorted(seen - set(ALLOWED))
    assert not extra, f"a handler imports storage outside the allow-list (docs/architecture.md): {extra}"
    stale = sorted(set(ALLOWED) - seen)
    assert not stale, f"allow-list entries no longer needed: remove them here and in the docs: {stale}"


@pytest.mark.parametrize("folder,forbidden", [
    ("adapters", ("handlers",)),
    ("social_mall", ("handlers", "adapters", "aiohttp.web")),
    ("flows", ("handlers", "adapters")),
])
def test_lower_layers_do_not_import_upper_ones(folder, forbidden):
    bad = sorted((p.relative_to(ROOT).as_posix(), n) for p in files(folder) for pkg in forbidden
                 for n in under(imports(p), pkg))
    assert not bad, bad


def test_the_allow_list_is_the_one_in_the_docs():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for (path, module), _why in ALLOWED.items():
        assert f"`{path}` → `{module}`" in doc, (path, module)


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "h.py"
    sample.write_text("def f():\n    from storage.models import Order\n    import storage.kv\n")
    assert under(imports(sample), "storage") == {"storage.models", "storage.kv"}
