"""Nothing outside gridloop/contract spells a topic, quantity, event type, command name, status or meta key.

String constants (not docstrings) in the package, benchmarks and examples are read with ``ast``; tests may spell
the wire on purpose (they check the contract from outside, so a renamed enum value fails them).
"""

from __future__ import annotations

import ast
from pathlib import Path

from gridloop.contract import CommandName, CommandStatus, DeviceStatus, EventType, Quantity, TopicKind
from gridloop.contract.devices import META_MODELS, DeviceMeta

ROOT = Path(__file__).resolve().parents[2]
SCANNED = [ROOT / "gridloop", ROOT / "benchmarks", ROOT / "examples"]
CONTRACT = ROOT / "gridloop" / "contract"
WIRE_WORDS = {m.value for enum in (Quantity, EventType, CommandName) for m in enum}
STATUS_WORDS = {m.value for m in CommandStatus} | {m.value for m in DeviceStatus}
TOPIC_KINDS = {m.value for m in TopicKind}
QUANTITY_FAMILIES = tuple({q.value.split(".")[0] + "." for q in Quantity})
META_KEYS = {f for model in {*META_MODELS.values(), DeviceMeta} for f in model.model_fields}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _is_meta_access(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """A constant used as a key of something called meta: ``meta["x"]``, ``meta.get("x")``, ``{"meta": {"x": …}}``."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.Subscript) and parent.slice is node:
        return "meta" in ast.unparse(parent.value).split(".")[-1].lower()
    if isinstance(parent, ast.Call) and node in parent.args and isinstance(parent.func, ast.Attribute):
        return parent.func.attr == "get" and "meta" in ast.unparse(parent.func.value).lower()
    if isinstance(parent, ast.Dict) and node in parent.keys:
        grand = parents.get(id(parent))
        if isinstance(grand, ast.Dict):
            i = next(k for k, v in enumerate(grand.values) if v is parent)
            key = grand.keys[i]
            return isinstance(key, ast.Constant) and key.value == "meta"
    return False


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in skip:
            continue
        value, where = node.value, f"{path.relative_to(ROOT)}:{node.lineno}"
        if value in WIRE_WORDS or "gridloop/v1" in value or value.startswith(("$share/", *QUANTITY_FAMILIES)):
            out.append(f"{where}: {value!r}")
        elif value in STATUS_WORDS and _is_compared_or_keyed(node, parents):
            out.append(f"{where}: status {value!r}")
        elif value in TOPIC_KINDS and _is_topic_argument(node, parents):
            out.append(f"{where}: topic kind {value!r}")
        elif value in META_KEYS and _is_meta_access(node, parents):
            out.append(f"{where}: meta key {value!r}")
    return out


def _is_compared_or_keyed(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """A status word compared with, tested for membership or passed as an argument (not a counter's own name)."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.Tuple | ast.Set | ast.List):
        parent = parents.get(id(parent))
    return isinstance(parent, ast.Compare | ast.Call | ast.keyword)


def _is_topic_argument(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    parent = parents.get(id(node))
    return (isinstance(parent, ast.Call) and node in parent.args
            and ast.unparse(parent.func).split(".")[-1] in {"topic", "shared", "all_tenants"})


def test_no_wire_literal_outside_the_contract():
    findings = [f for base in SCANNED if base.exists() for path in sorted(base.rglob("*.py"))
                if CONTRACT not in path.parents for f in _findings(path)]
    assert not findings, "spell these with gridloop.contract's enums:\n" + "\n".join(findings)


def test_the_scanner_catches_each_kind_of_literal(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('x = {"electricity.voltage.l1": 1}\nif s == "executed": pass\ntopic(t, "commands", d)\n'
                   'meta.get("interval_s")\nd = {"meta": {"protective": True}}\ny = "gridloop/v1/a"\n'
                   'def f():\n    """electricity.voltage.l1 in a docstring is prose."""\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(_findings(bad)) == 6
    finally:
        ROOT = saved
