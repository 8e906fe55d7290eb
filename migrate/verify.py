"""Verification's public names in one import (`from migrate import verify`): run two models on the same inputs
and compare their outputs, like Polygraphy's `run` comparison. The logic lives in migrate/verification/:
feeds.py (inputs), runners.py (a runner per artifact kind), compare.py (the comparison and the errors it
raises), endpoints.py (two artifacts of any kinds, `migrate verify`). Nothing is defined here."""
from migrate.verification.compare import (
    Comparison, UNCHECKED_HINT, all_ok, compare, failed_outputs, format_rows, require_checked, require_ok,
    require_signatures_ok, status)
from migrate.verification.endpoints import (
    Endpoint, aliases, endpoint, match_names, run_endpoint, verify_pair)
from migrate.verification.feeds import (
    Feeds, Results, cut_placeholder, example_inputs, feeds_for, feeds_for_signature, feeds_from, generate_feeds,
    input_aliases, input_specs, load_npz, load_npz_named, plain, present_feeds, tensor_specs, with_origin,
    with_tensors)
from migrate.verification.runners import (
    GraphFileRunner, OnnxRunner, SessionRunner, SignatureRunner, check, check_frozen, check_models, run_batches,
    run_model, run_file, run_signature, runner_for)

__all__ = ["Comparison", "UNCHECKED_HINT", "all_ok", "compare", "failed_outputs", "format_rows", "require_checked",
           "require_ok", "require_signatures_ok", "status", "Endpoint", "aliases", "endpoint", "match_names",
           "run_endpoint", "verify_pair", "Feeds", "Results", "cut_placeholder", "example_inputs", "feeds_for",
           "feeds_for_signature", "feeds_from", "generate_feeds", "input_aliases", "input_specs", "load_npz",
           "load_npz_named", "plain", "present_feeds", "tensor_specs", "with_origin", "with_tensors",
           "GraphFileRunner", "OnnxRunner", "SessionRunner", "runner_for", "SignatureRunner", "check",
           "check_frozen", "check_models",
           "run_batches", "run_model", "run_file", "run_signature", "check_pair"]

check_pair = check_models  # the name callers know: two models, each in its own session
