"""The shape of the code, as the README's "Code layout" states it: stages around one store, data
flowing one way, and no module importing from a stage above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mentionwatch"
README = Path(__file__).resolve().parent.parent / "README.md"

# Top-level names under mentionwatch/ -> their stage.
STAGE_OF = {
    "__init__": "vocabulary", "model": "vocabulary", "errors": "vocabulary", "text": "vocabulary",
    "matching": "vocabulary", "sla": "vocabulary", "workers": "vocabulary",
    "config": "inputs", "http": "inputs", "sources": "inputs",
    "store": "store",
    "ingest": "ingest",
    "workflow": "workflow",
    "outputs": "outputs",
    "notify": "notify",
    "reports": "reports",
    "cli": "commands", "demo": "commands", "__main__": "commands",
}
# What each stage may import: itself and the stages it builds on; never one above it.
MAY_IMPORT = {
    "vocabulary": {"vocabulary"},
    "inputs": {"vocabulary", "inputs"},
    "store": {"vocabulary", "store"},
    "ingest": {"vocabulary", "inputs", "store", "ingest"},
    "workflow": {"vocabulary", "inputs", "store", "workflow"},
    "outputs": {"vocabulary", "inputs", "store", "ingest", "workflow", "outputs"},
    "notify": {"vocabulary", "inputs", "store", "workflow", "outputs", "notify"},
    "reports": {"vocabulary", "inputs", "store", "ingest", "workflow", "outputs", "reports"},
    "commands": set(STAGE_OF.values()),
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def top_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, top-level mentionwatch name) of every import in the file, those inside functions too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mentionwatch":
                    out.append((node.lineno, parts[1] if len(parts) > 1 else "__init__"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "mentionwatch":
                continue
            if len(parts) > 1:
                out.append((node.lineno, parts[1]))
            else:  # from mentionwatch import x, y
                out.extend((node.lineno, a.name) for a in node.names if a.name != "__version__")
    return out


def test_every_module_has_a_stage():
    assert {top_name(p) for p in modules()} <= set(STAGE_OF), "a new top-level module needs a stage here"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_from_a_stage_above(path):
    stage = STAGE_OF[top_name(path)]
    wrong = [(line, name, STAGE_OF.get(name)) for line, name in imported(path)
             if STAGE_OF.get(name) not in MAY_IMPORT[stage]]
    assert not wrong, f"{path.name} ({stage}) imports from stages it may not: {wrong}"


def test_the_layout_test_can_tell(tmp_path):
    """The checker itself: a store module importing the workflow is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mentionwatch.workflow import triage_rows\n")
    assert imported(bad) == [(2, "workflow")]
    assert "workflow" not in MAY_IMPORT["store"]


def test_readme_code_layout_names_every_module():
    text = README.read_text(encoding="utf-8")
    layout = text[text.index("### Code layout"):]
    layout = layout[: layout.index("\n## ")] if "\n## " in layout else layout
    for path in modules():
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and len(rel.parts) > 1:
            name = rel.parts[0] + "/"
        elif rel.parts[0] == "sources" and rel.name != "__init__.py":
            continue  # one module per source: the README names the folder and the contract
        else:
            name = str(rel) if len(rel.parts) == 1 else rel.name
        if name in ("__init__.py", "__main__.py"):
            continue
        assert name in layout, f"README's Code layout does not name {name}"


def test_save_path_visits_each_room_once_in_order(tmp_path, monkeypatch):
    """ingest.save_found: the store says which mentions are new, repeats links them, tagging tags
    them, the store writes them (with the poll's cursor in the same transaction)."""
    from helpers import mention, store_mentions

    from mentionwatch import store
    from mentionwatch.ingest import repeats, tagging

    calls: list[str] = []

    def spy(module, name, label):
        real = getattr(module, name)

        def wrapped(*a, **kw):
            calls.append(label)
            return real(*a, **kw)

        monkeypatch.setattr(module, name, wrapped)

    spy(store, "stored_ids", "store: which are new")
    spy(repeats, "links", "repeats: earlier contacts")
    spy(tagging, "tags", "tagging: the rules")
    spy(store, "save_rows", "store: write")
    conn = store.open_db(tmp_path / "m.db")
    new = store_mentions(conn, None, [mention("1", "acme is down", "2026-11-20T10:00:00Z"),
                                      mention("2", "acme is down again", "2026-11-20T11:00:00Z")])
    assert new == ["hackernews:1", "hackernews:2"]
    assert calls == ["store: which are new", "repeats: earlier contacts", "tagging: the rules", "store: write"]
    assert store.get_mention(conn, "hackernews:2")["repeat_of"] == "hackernews:1"
