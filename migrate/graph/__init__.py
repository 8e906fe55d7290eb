"""GraphDef helpers: names, a directed-graph view (data + control edges), orders, reachability, in-place edits."""
from migrate.graph.names import (control_input, data_input, input_key, is_control, node_name, output_index,
                                 tensor_name)
from migrate.graph.view import (CONTROL, DATA, consumers, dangling_inputs, data_consumers, loop_back_edges,
                                needed_nodes, reachable, sinks, to_digraph, topological_order)
from migrate.graph.edit import (Splice, add_const, const_value, drop_unreachable, forwarding_splice,
                                keep_only, make_const, node_map, remove_nodes, splice_out, unique_name)
