"""The library entry points the CLI calls: load -> stage -> verify -> write, one function per verb
(each in its own module under migrate/verbs/). Every verb takes keywords or `options=` records
(options.ShapeOptions / TrtOptions / VerifyOptions) and returns a namedtuple result (migrate/options.py)."""
from migrate.verbs.calibrate import calibrate
from migrate.verbs.convert import DEMO_MODEL, convert, demo
from migrate.verbs.export import export
from migrate.verbs.freeze import freeze
from migrate.verbs.optimize import optimize, plan
from migrate.verbs.verify import onnx, verify_artifacts

__all__ = ["calibrate", "convert", "demo", "DEMO_MODEL", "export", "freeze", "onnx", "optimize", "plan",
           "verify_artifacts"]
