"""Every module of migrate/ and legacy_models/ imports in this interpreter (Python 3.6 in the oldest env)."""
import importlib
import pkgutil

import pytest

import legacy_models
import migrate

MODULES = sorted(name for package in (migrate, legacy_models)
                 for _, name, _ in pkgutil.walk_packages(package.__path__, package.__name__ + "."))


def test_modules_found():
    assert "migrate.tfcompat" in MODULES and "migrate.passes.fold_batch_norms" in MODULES
    assert len(MODULES) > 25


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)
