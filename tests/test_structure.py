"""The package's shape, checked by reading its source (ast): where op knowledge and TF-version knowledge live,
and how modules may import each other. Each test names the offending file:line so a newcomer sees where to
move the code."""
import ast
import os
import re

import migrate

ROOT = os.path.dirname(os.path.abspath(migrate.__file__))
# An op type name as TF spells it: CamelCase with at least one lower-case letter ("VariableV2", "NoOp"), so
# precision names ("FP16"), dtype names ("float32") and option words ("auto") never count.
OP_NAME = re.compile(r"^[A-Z][a-z]+[A-Za-z0-9]*$")


def _modules():
    """[(module name, path, ast)] of every module in migrate/."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for file in sorted(files):
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                with open(path) as handle:
                    found.append((".".join(parts), path, ast.parse(handle.read(), path)))
    return found


def _where(path, node):
    return "{}:{}".format(os.path.relpath(path, os.path.dirname(ROOT)), node.lineno)


def _strings(node):
    """The string elements of a literal tuple / list / set, or of frozenset([...]) / set([...]) / frozenset({...})."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set") \
            and len(node.args) == 1:
        node = node.args[0]
    if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return None
    values = [getattr(e, "value", getattr(e, "s", None)) for e in node.elts]
    return values if all(isinstance(v, str) for v in values) else None


def _op_literal(node):
    values = _strings(node)
    return values is not None and len(values) >= 2 and all(OP_NAME.match(v) for v in values)


# Modules another helper rewrites this session (issue 13, verification/options side): they move to opsets
# when that work merges (api.py counts frozen variables with opsets.FREEZABLE_VARIABLE_OPS then).
OP_SET_PENDING = {"migrate.api"}


def test_op_sets_are_declared_only_in_opsets():
    """Op sets (a literal collection of two or more op type names) are declared in migrate/opsets.py: as a
    module constant, or inline in an `in` test (`node.op in ("Variable", "VariableV2")`)."""
    found = []
    for name, path, tree in _modules():
        if name == "migrate.opsets" or name in OP_SET_PENDING:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for op, right in zip(node.ops, node.comparators):
                    if isinstance(op, (ast.In, ast.NotIn)) and _op_literal(right):
                        found.append(_where(path, node))
            elif isinstance(node, ast.Assign) and _op_literal(node.value):
                found.append(_where(path, node))
            elif isinstance(node, ast.BinOp) and (_op_literal(node.left) or _op_literal(node.right)):
                found.append(_where(path, node))
    assert found == [], "op sets declared outside migrate/opsets.py: " + ", ".join(found)


def test_op_set_scan_sees_what_it_should():
    """The scan above flags the forms it claims to (a scan that flags nothing would pass vacuously)."""
    flagged = ["OPS = frozenset(['Variable', 'VariableV2'])", "if node.op in ('Const', 'Placeholder'): pass",
               "ok = op not in {'NoOp', 'Identity'}", "X = Y | frozenset(['Print', 'Assert'])"]
    clean = ["PRECISIONS = ('FP32', 'FP16', 'INT8')", "APIS = ('auto', 'v1', 'v2')", "if x in ('a', 'b'): pass",
             "ONE = frozenset(['NoOp'])"]
    for source in flagged + clean:
        tree = ast.parse(source)
        hits = [n for n in ast.walk(tree) if (isinstance(n, ast.Assign) and _op_literal(n.value)) or
                (isinstance(n, ast.Compare) and any(_op_literal(c) for c in n.comparators)) or
                (isinstance(n, ast.BinOp) and (_op_literal(n.left) or _op_literal(n.right)))]
        assert bool(hits) == (source in flagged), source
