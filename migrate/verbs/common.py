"""What every verb shares: the progress sink, the decorators (MemoryError as one line, option records as
keywords), the frozen source a verb starts from, --set switches, and the per-pass progress line."""
from migrate import artifacts, freezing, options as results, pipeline, safety, verify
from migrate.freezing import outputs as freeze_outputs, rewrites
from migrate.graph.names import node_name


def quiet(message):
    pass


def memory_named(function):
    """MemoryError (a model too big for the memory limit, ulimit -v) becomes the one line naming the source
    (the verb's first argument); everything written so far is removed by the atomic writers."""
    import functools

    @functools.wraps(function)
    def run(source, *args, **kwargs):
        try:
            return function(source, *args, **kwargs)
        except MemoryError:
            from migrate.errors import BadInput
            raise BadInput("out of memory (MemoryError) while working on it", source,
                           "raise the process's memory limit (ulimit -v) or use a machine with more memory")
    return run


def taking_options(function):
    """The verb also takes `options=`: option records (options.ShapeOptions / TrtOptions / VerifyOptions, one or
    a tuple) standing for the keywords they name (options.keywords); keywords given as well are overridden."""
    import functools

    @functools.wraps(function)
    def run(*args, **kwargs):
        kwargs.update(results.keywords(kwargs.pop("options", None)))
        return function(*args, **kwargs)
    return run


def frozen_source(source, outputs, tag, signature, checkpoint, progress, allow_unsafe=False, input_at=None,
                   set_values=None):
    """(frozen Model, output tensors, how): frozen graphs load as they are (outputs: --outputs, else recorded
    in the graph, else inferred), everything else is frozen first. An input pipeline the outputs read is cut
    (pipeline.prepare)."""
    from migrate import model as m
    model = artifacts.load(source, tag=tag, signature=signature, checkpoint=checkpoint)
    if model.kind != m.FROZEN_GRAPH:
        progress("{} is a {}: freezing it first".format(source, model.kind))
        model, _ = pipeline.prepare_resolving(model, outputs, signature, input_at, progress)
        safety.check(model, freeze_outputs.resolve_outputs(model, outputs, signature)[0], allow_unsafe)
        model, record = freezing.freeze(model, outputs=outputs, signature=signature, set_values=set_values)
        return model, record.outputs, record.how_outputs
    tensors, how = freeze_outputs.resolve_outputs(model, outputs)
    model, _ = pipeline.prepare(model, tensors, input_at, progress)
    return model, tensors, how


def with_switches(model, set_values, progress):
    """(model to optimize, {switch: value}): train/infer switches and --set values made constants, as freeze
    does, on a copy (the model itself stays the verification reference)."""
    switches = rewrites.switch_values(model.graph_def, rewrites.parse_set_values(set_values))
    if not switches:
        return model, switches
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    graph_def.CopyFrom(model.graph_def)
    rewrites.apply_switches(graph_def, switches)
    progress("switches set to constants (as freeze does): " + ", ".join(
        "{}={}".format(k, v) for k, v in sorted(switches.items())))
    return model.derive(graph_def=graph_def, note="switches " + ", ".join(
        "{}={}".format(k, v) for k, v in sorted(switches.items()))), switches


def fed_switches(reference, switches, set_values):
    """The switch values the unedited reference must be fed: every --set, and plain Placeholders."""
    values = rewrites.parse_set_values(set_values)
    return dict((k, v) for k, v in switches.items() if k in values or is_placeholder(reference, k))


def is_placeholder(model, name):
    return any(n.name == node_name(name) and n.op == "Placeholder" for n in model.graph_def.node)


def indent(progress):
    return lambda message: progress("  " + message.replace("\n", "\n  "))


def require_ok(rows, step, where, progress=quiet):
    if rows is not None and not verify.all_ok(rows):
        progress("{} vs its input, same inputs:".format(step))
        progress(verify.format_rows(rows))  # the errors the message points to
        verify.require_ok(rows, where, step + " changed the outputs: {}", "see the errors above; nothing was written")


def pass_line(record):
    changes = ", ".join("-{} {}".format(n, op) for op, n in sorted(record.removed.items()))
    added = ", ".join("+{} {}".format(n, op) for op, n in sorted(record.added.items()))
    notes = "; ".join(record.notes[:3]) + (" ..." if len(record.notes) > 3 else "")
    detail = "; ".join(part for part in (changes, added) if part) or notes or record.reason or "no change"
    return "  {:18} {:>6} -> {:<6} nodes  {:.3f}s  {}".format(record.name, record.nodes_before, record.nodes_after,
                                                             record.seconds, detail)
