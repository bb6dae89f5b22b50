"""docs/api.md's error table lists every problem `code` the API can emit, with its status, and no code
the API does not emit: the codes are read from the source of api/, so the two cannot drift apart."""

import ast
import re
from pathlib import Path

import pytest

# No query of its own; the autouse fixtures in tests/conftest.py clear the cache, which is the database cache.
pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
API_SOURCES = sorted((ROOT / "api").rglob("*.py"))
CODE = re.compile(r"^[a-z]+(?:_[a-z]+)*$")


def _codes_in(node: ast.AST) -> list[tuple[int | None, str]]:
    """(status or None, code) for the string constants an expression can give as a code: a literal, a
    conditional, or `{status: code, ...}.get(status, default)`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
        return [(None, node.value)]
    if isinstance(node, ast.IfExp):
        return _codes_in(node.body) + _codes_in(node.orelse)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Dict)
    ):
        mapping = node.func.value
        found = []
        for key, value in zip(mapping.keys, mapping.values, strict=True):
            status = key.value if isinstance(key, ast.Constant) and isinstance(key.value, int) else None
            found += [(status, code) for _, code in _codes_in(value)]
        return found + [c for default in node.args[1:] for c in _codes_in(default)]
    return []


def _assigned(function: ast.AST, name: str) -> list[tuple[int | None, str]]:
    """Every code assigned to `name` in the function: `code = ...` or `code, message = "x", "..."`."""
    found = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                found += _codes_in(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for i, element in enumerate(target.elts):
                    if isinstance(element, ast.Name) and element.id == name:
                        found += _codes_in(node.value.elts[i])
    return found


def codes_in_source() -> dict[str, set[int | None]]:
    """code -> the statuses it is raised with (None where the status is not a literal): every
    ApiProblem(status, code, ...) in api/, following a code held in a variable to its assignments."""
    codes: dict[str, set[int | None]] = {}
    for path in API_SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "ApiProblem"):
                continue
            args = dict(enumerate(call.args)) | {
                {"status": 0, "code": 1}[k.arg]: k.value for k in call.keywords if k.arg in ("status", "code")
            }
            status_node, code_node = args[0], args[1]
            status = status_node.value if isinstance(status_node, ast.Constant) else None
            if isinstance(code_node, ast.Name):
                enclosing = [f for f in functions if f.lineno <= call.lineno <= f.end_lineno]
                found = _assigned(min(enclosing, key=lambda f: f.end_lineno - f.lineno), code_node.id)
                assert found, f"{path.name}:{call.lineno}: cannot tell which codes `{code_node.id}` holds"
            else:
                found = _codes_in(code_node)
                assert found, f"{path.name}:{call.lineno}: ApiProblem with a code this test cannot read"
            for mapped_status, code in found:
                codes.setdefault(code, set()).add(status if status is not None else mapped_status)
    return codes


def documented_codes() -> dict[str, str]:
    """code -> status cell, from the table in docs/api.md's Errors section."""
    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] != "Status" and (match := re.fullmatch(r"`([a-z_]+)`", cells[1])):
            assert match.group(1) not in rows, f"{match.group(1)} is listed twice"
            assert cells[3], f"{match.group(1)}: say whether it is stored for Idempotency-Key replay"
            rows[match.group(1)] = cells[0]
    return rows


def test_the_parser_finds_the_codes_it_must():
    codes = codes_in_source()
    # a literal, a code held in a variable, a code from a status mapping, and its fallback
    assert {"invalid_cursor", "rejected", "idempotency_key_required", "malformed_request", "error"} <= set(codes)
    assert codes["malformed_request"] == {400} and codes["idempotency_key_required"] == {422}


def test_every_error_code_is_documented_with_its_status():
    in_source = codes_in_source()
    in_docs = documented_codes()
    assert sorted(set(in_source) - set(in_docs)) == [], "codes the API emits that docs/api.md does not list"
    assert sorted(set(in_docs) - set(in_source)) == [], "codes docs/api.md lists that the API never emits"
    for code, statuses in in_source.items():
        known = {str(s) for s in statuses if s is not None}
        if known:
            assert {in_docs[code]} == known, f"{code}: documented as {in_docs[code]}, raised with {known}"
