"""Execute an IR graph in numpy: in float (the front end's reference) or in integers (the bit-exact simulator).

The integer simulator *is* the specification of the generated C code: every op's ``eval_int`` uses the
integer arithmetic its C kernel uses and saturates to its output's bits, so C output must equal simulator
output byte for byte. Values are held unpacked, one integer per element (int8 arrays for 8-, 4- and 2-bit
tensors); :func:`storage_of` / :func:`from_storage` turn a value into the bytes the C arena holds for its
tensor (packed for int4 / int2, see ``arith/bitwidth.py``) and back.
"""

from __future__ import annotations

import numpy as np

from ..arith.bitwidth import pack, unpack
from ..ir import Graph
from ..ops import op_def


def node_inputs(graph: Graph, node, values: dict[str, np.ndarray]) -> list:
    """The arrays a node reads: constants from the graph, activations from ``values`` (None for '')."""
    return [None if not i else (graph.tensors[i].data if graph.tensors[i].is_const else values[i]) for i in node.inputs]


def eval_node(graph: Graph, node, ins: list, integer: bool) -> list[np.ndarray]:
    d = op_def(node)
    return d.eval_int(node, graph, ins) if integer else d.eval_float(node, graph, ins)


def _run(graph: Graph, feeds: dict[str, np.ndarray], integer: bool, keep_all: bool = False) -> dict[str, np.ndarray]:
    values = {name: np.asarray(feeds[name]).reshape(graph.tensors[name].shape) for name in graph.inputs}
    readers: dict[str, int] = {}
    for n in graph.nodes:
        for i in n.inputs:
            if i:
                readers[i] = readers.get(i, 0) + 1
    for n in graph.nodes:
        values.update(zip(n.outputs, eval_node(graph, n, node_inputs(graph, n, values), integer)))
        if not keep_all:  # drop each activation after its last reader, as the arena does
            for i in n.inputs:
                if i in readers:
                    readers[i] -= 1
                    if readers[i] == 0 and i not in graph.outputs:
                        values.pop(i, None)
    return values if keep_all else {o: values[o] for o in graph.outputs}


def run_nodes(graph: Graph, nodes, values: dict[str, np.ndarray], integer: bool) -> dict[str, np.ndarray]:
    """Run ``nodes`` (a tail of the graph) from the given tensor values; returns every value."""
    values = dict(values)
    for n in nodes:
        values.update(zip(n.outputs, eval_node(graph, n, node_inputs(graph, n, values), integer)))
    return values


#: ops whose integer evaluation takes a batch of samples along N unchanged (each sample's arithmetic on its own:
#: the accumulations of integer products are exact, in any order); any other op runs sample by sample
BATCHED_OPS = frozenset({"conv2d", "depthwise_conv2d", "add", "max_pool2d", "avg_pool2d"})

#: ops that take a batch along N when their tensors have N = 1: row by row over the last axis (a fully connected
#: layer's rows, a softmax's), and a reshape that keeps N = 1 first (it moves no value across samples)
BATCHED_ROW_OPS = frozenset({"fully_connected", "softmax", "reshape"})


def batches(graph: Graph, node) -> bool:
    """Whether :func:`run_batched` runs ``node`` on the whole batch (:data:`BATCHED_OPS`, :data:`BATCHED_ROW_OPS`)."""
    if node.op in BATCHED_OPS:
        return True
    if node.op not in BATCHED_ROW_OPS:
        return False
    shapes = [graph.tensors[t].shape for t in (node.inputs[0], *node.outputs)]
    rows = node.op != "fully_connected" or len(shapes[0]) == 2
    return rows and all(len(s) >= 1 and s[0] == 1 for s in shapes)


def run_batched(graph: Graph, nodes, values: dict[str, np.ndarray], n: int) -> list[dict[str, np.ndarray]]:
    """:func:`run_nodes` (integer) on ``n`` samples at once: ``values`` hold each tensor of the n samples stacked
    along N; the nodes :func:`batches` says run on the whole batch until the first other node, from which on
    every sample runs on its own. Returns each sample's values (N = 1), as ``run_nodes`` would."""
    values = dict(values)
    single: list[dict[str, np.ndarray]] | None = None
    for node in nodes:
        if single is None and batches(graph, node):
            if node.op == "reshape":  # N samples of a [1, ...] shape
                outs = [values[node.inputs[0]].reshape((n,) + tuple(graph.tensors[node.outputs[0]].shape[1:]))]
            else:
                outs = eval_node(graph, node, node_inputs(graph, node, values), True)
            for name, v in zip(node.outputs, outs):
                if v.shape != (n,) + tuple(graph.tensors[name].shape[1:]):
                    raise AssertionError(f"{node.name}: batched output {v.shape} for {n} samples of "
                                         f"{graph.tensors[name].shape}")
                values[name] = v
            continue
        if single is None:
            single = [{k: v[i: i + 1] for k, v in values.items()} for i in range(n)]
        for d in single:
            d.update(zip(node.outputs, eval_node(graph, node, node_inputs(graph, node, d), True)))
    return single if single is not None else [{k: v[i: i + 1] for k, v in values.items()} for i in range(n)]


def run_float(graph: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Evaluate the float graph; inputs in physical (IR) layout."""
    return _run(graph, feeds, False, keep_all)


def run_int(graph: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Evaluate the quantized graph exactly as the C code does; integer inputs (unpacked) in physical layout."""
    return _run(graph, feeds, True, keep_all)


def to_physical(graph: Graph, name: str, logical: np.ndarray) -> np.ndarray:
    perm = graph.io_perm.get(name)
    arr = np.asarray(logical)
    if perm is not None and arr.ndim == len(perm):
        arr = arr.transpose(perm)
    return np.ascontiguousarray(arr).reshape(graph.tensors[name].shape)


def to_logical(graph: Graph, name: str, physical: np.ndarray) -> np.ndarray:
    perm = graph.io_perm.get(name)
    arr = np.asarray(physical)
    if perm is not None and arr.ndim == len(perm):
        arr = arr.transpose(np.argsort(perm))
    return arr


def storage_of(graph: Graph, name: str, values: np.ndarray) -> np.ndarray:
    """The bytes (uint8, flat) tensor ``name`` takes in memory holding ``values`` (one integer per
    element, physical layout): packed for int4 / int2, ``graph.tensors[name].nbytes`` of them."""
    t = graph.tensors[name]
    if t.quant is None:
        raise ValueError(f"tensor '{name}' is not quantized: it has no integer storage")
    arr = np.asarray(values).reshape(t.shape)
    raw = pack(arr, t.bits).reshape(-1)
    if raw.size != t.nbytes:
        raise ValueError(f"tensor '{name}': {raw.size} bytes packed, {t.nbytes} planned")
    return raw


def from_storage(graph: Graph, name: str, raw: np.ndarray) -> np.ndarray:
    """Inverse of :func:`storage_of`: the values of tensor ``name`` from its bytes in memory."""
    t = graph.tensors[name]
    raw = np.asarray(raw, np.uint8).reshape(-1)
    if raw.size != t.nbytes:
        raise ValueError(f"tensor '{name}' takes {t.nbytes} bytes, got {raw.size}")
    return unpack(raw.reshape(tuple(t.shape[:-1]) + (t.pixel_bytes,)), t.bits, t.shape[-1])
