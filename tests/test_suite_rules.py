"""Rules the test suite holds itself to: every property test runs under the suite's one hypothesis profile."""
import ast
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _decorator_names(function):
    names = []
    for decorator in function.decorator_list:
        node = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.append(node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", ""))
    return names


def test_every_hypothesis_test_uses_the_suite_profile():
    """@given tests carry @SETTINGS = conftest.hypothesis_settings() (no deadline, too_slow suppressed,
    derandomized) and no settings of their own that could override it."""
    given, offenders = [], []
    for path in sorted(glob.glob(os.path.join(HERE, "**", "test_*.py"), recursive=True)):
        with open(path) as handle:
            tree = ast.parse(handle.read(), path)
        module_settings = [node for node in ast.walk(tree) if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "SETTINGS" for target in node.targets)]
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and "given" in _decorator_names(node):
                given.append(node.name)
                names = _decorator_names(node)
                uses_profile = "SETTINGS" in names and all(
                    isinstance(a.value, ast.Call) and getattr(a.value.func, "id", "") == "hypothesis_settings"
                    for a in module_settings) and module_settings
                if not uses_profile or "settings" in names:
                    offenders.append("{}::{}".format(os.path.basename(path), node.name))
    assert given, "no hypothesis test found: the rule checks nothing"
    assert not offenders, offenders
