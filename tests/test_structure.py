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


# Where op sets may be declared: opsets.py, and TF-TRT's converter tables (data read from TF's sources, one set
# of ops per TF-TRT generation; opsets.py says where they live).
OP_KNOWLEDGE = ("migrate.opsets", "migrate.planning.tables")


def test_op_sets_are_declared_only_in_opsets():
    """Op sets (a literal collection of two or more op type names) are declared in migrate/opsets.py: as a
    module constant, or inline in an `in` test (`node.op in ("Variable", "VariableV2")`)."""
    found = []
    for name, path, tree in _modules():
        if name in OP_KNOWLEDGE:
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


# ------------------------------------------------------------------------------------------ TF versions

TF_PRIVATE = ("tensorflow.python", "tensorflow.contrib", "tensorflow.compiler")
# getattr/hasattr outside tfcompat that probe no TF object (attribute name -> why it is not a TF probe).
# Anything else (a probe of a TF module, class or proto for what this TF version has) belongs in tfcompat.
PROBE_ALLOWED = {
    ("migrate.cli", "param"): "click's UsageError/BadParameter",
    ("migrate.cli", "opts"): "click's Parameter",
    ("migrate.cli", "param_hint"): "click's BadParameter",
    ("migrate.errors", "message"): "first_line: TF's OpError.message (to move to tfcompat.error_message)",
    ("migrate.options", None): "fields of migrate's own result namedtuples, read by key",
    ("migrate.options", "_fields"): "an option record (a namedtuple) given alone instead of a list",
    ("migrate.passes.base", "snapshot"): "the pipeline context migrate builds",
    ("migrate.graph.view", "successors"): "a networkx graph given instead of a GraphDef",
    ("migrate.graph.view", "predecessors"): "a networkx graph given instead of a GraphDef",
    ("migrate.graph.edit", "shape"): "a numpy value",
    ("migrate.graph.edit", None): "TensorProto's value field for a dtype (protobuf, the same in every TF)",
    ("migrate.passes.numpy_eval", None): "TensorProto's value field for a dtype (protobuf, the same in every TF)",
    ("migrate.session", "name"): "fetches and feeds: tensors or tensor names, as a caller passes them",
    ("migrate.tftrt.outcome", "_asdict"): "a namedtuple among the kwargs being reported",
    ("migrate.tftrt.outcome", "node"): "a GraphDef among the kwargs being reported",
    ("migrate.tftrt.outcome", "__name__"): "a callable among the kwargs being reported",
}
PROBE_ALLOWED.update((("migrate.verification." + module, attr), "migrate's own Feeds / Results records")
                     for module in ("compare", "endpoints", "feeds", "runners") for attr in ("origin", "alternate"))


def _imported(node):
    """Module names an Import / ImportFrom node names (function-local ones too)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module] + [node.module + "." + alias.name for alias in node.names]
    return []


def _string(node):
    value = getattr(node, "value", getattr(node, "s", None)) if isinstance(node, (ast.Str, ast.Constant)) else None
    return value if isinstance(value, str) else None


def _tf_version_leaks(name, path, tree):
    found = []
    for node in ast.walk(tree):
        for module in _imported(node):
            if module.startswith(TF_PRIVATE):
                found.append("{} imports {}".format(_where(path, node), module))
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if called in ("hasattr", "getattr") and len(node.args) >= 2:
                attr = _string(node.args[1])
                if (name, attr) not in PROBE_ALLOWED:
                    found.append("{} {}(..., {!r})".format(_where(path, node), called, attr))
            if called == "import_module" and node.args and (_string(node.args[0]) or "").startswith(TF_PRIVATE):
                found.append("{} imports {}".format(_where(path, node), _string(node.args[0])))
        if isinstance(node, ast.Compare) and _string(node.left) is not None and \
                any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and \
                any(isinstance(c, ast.Call) and getattr(c.func, "id", None) == "str" for c in node.comparators):
            found.append("{} matches error text {!r}".format(_where(path, node), _string(node.left)))
    return found


def test_tf_version_knowledge_only_in_tfcompat():
    """Outside migrate/tfcompat.py no module imports tensorflow.python / contrib / compiler, probes objects with
    hasattr/getattr (but for PROBE_ALLOWED), or matches error text (`"same name" in str(exc)`)."""
    found = []
    for name, path, tree in _modules():
        if name != "migrate.tfcompat":
            found.extend(_tf_version_leaks(name, path, tree))
    assert found == [], "TF-version knowledge outside tfcompat: " + "; ".join(found)


def test_tf_version_scan_sees_what_it_should():
    flagged = ["from tensorflow.python.ops import gen_lookup_ops", "import tensorflow.contrib.tensorrt as trt",
               "x = hasattr(reader, 'get_variable_to_dtype_map')", "ok = 'same name' in str(exc)",
               "m = importlib.import_module('tensorflow.compiler.tf2tensorrt')"]
    clean = ["from tensorflow.core.framework import graph_pb2", "ok = temp in str(exc)",
             "import tensorflow as tf"]
    for source in flagged + clean:
        assert bool(_tf_version_leaks("migrate.x", "/x.py", ast.parse(source))) == (source in flagged), source


# ------------------------------------------------------------------------------------------ imports

def _module_imports(name, tree, known):
    """[(imported migrate module, line, [names taken from it])] for every import in `tree` (function-local
    ones too): `from migrate import x` counts as importing migrate.x when that is a module."""
    package = name if name in known and known[name] else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, []) for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if base not in known:
                continue
            taken = []
            for alias in node.names:
                if base + "." + alias.name in known:
                    found.append((base + "." + alias.name, node.lineno, []))
                else:
                    taken.append(alias.name)
            if taken:
                found.append((base, node.lineno, taken))
    return found


def _known():
    """{module name: is a package} of migrate/."""
    return dict((name, path.endswith("__init__.py")) for name, path, _ in _modules())


def test_no_module_uses_another_modules_private_names():
    """`from migrate.x import _name` and `x._name` (x an imported migrate module) only inside x itself."""
    known, found = _known(), []
    for name, path, tree in _modules():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in known and alias.asname:
                        aliases[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if node.module + "." + alias.name in known:
                        aliases[alias.asname or alias.name] = node.module + "." + alias.name
        for module, line, taken in _module_imports(name, tree, known):
            for taken_name in taken:
                if taken_name.startswith("_") and not taken_name.startswith("__") and module != name:
                    found.append("{}:{} from {} import {}".format(os.path.relpath(path, os.path.dirname(ROOT)),
                                                                  line, module, taken_name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and aliases[node.value.id] != name:
                found.append("{} {}.{}".format(_where(path, node), aliases[node.value.id], node.attr))
    assert found == [], "private names used across modules: " + ", ".join(sorted(set(found)))


def _import_graph():
    known = _known()
    edges = {}
    for name, path, tree in _modules():
        for module, line, _ in _module_imports(name, tree, known):
            if module != name and not (known[module] and name.startswith(module + ".")):
                edges.setdefault(name, {}).setdefault(module, line)
    return edges


def test_import_graph_is_acyclic():
    """No import cycle among migrate's modules, counting function-local imports (which would only hide one).
    A package's own __init__ importing its submodules, and submodules importing their package, are the
    package's public surface and not counted as edges from the submodule side."""
    edges = _import_graph()
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else nxt)
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == [], "import cycles: " + "; ".join(cycles)
