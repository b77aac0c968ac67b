"""``mcucompile debug``: which layer loses the accuracy, and where the device departs from the simulator.

Two questions users of int8 deployment ask, answered layer by layer over the test inputs:

- *Quantization*: each layer's int8 (or lower-bit) output, dequantized, against the float model's tensor at
  the same point — onnxruntime with the intermediate outputs exposed (mapped through the IR's NHWC layout)
  for float ONNX models; our float simulator of the same graph where onnxruntime has no such tensor and for
  QDQ / int8 .tflite models (their float equivalents: dequantized weights). ``sqnr`` is cumulative (the error
  of everything before the layer included); ``own_sqnr`` is the layer's own, as TFLite's quantization debugger
  measures it: the integer layer against the float op run on the same inputs, dequantized, so the layer that
  loses the accuracy is found even when the error grows downstream. The worst ``own_sqnr`` comes first. With each layer: its output's scale,
  zero point, bits, the share of float values outside the representable range (``clipped``) and the share of
  the integer range the values use (``range_use``), and an option to try where one of them points at the
  calibration rule (e.g. ``--tensor-calibration NAME=mse``).
- *TFLite*: for an int8 .tflite model, each tensor against the same tensor of LiteRT's reference kernels
  (``litert_match``: the share of equal elements; 100% is the bit-exact pipeline).
- *Device*: with a board other than host, a debug build of the firmware prints every layer's output (the
  ``layer_output`` hook; each patch's region for the per-patch stage) for the first test input, and each is
  compared byte for byte with the simulator; the first layer, patch and element that differ are named.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..arith.bitwidth import pack, qrange
from ..errors import UserError
from ..ops.base import dequantize_values
from ..progress import Progress
from ..quant.simulate import eval_node, node_inputs, run_float, run_int, run_nodes, to_physical
from ..schedule.schedule import run_schedule_int
from ..targets.firmware import build_firmware, require_tool, run_qemu
from .compile import Compiled
from .library import quantize_input, write_library

#: below this share of the integer range in use a tensor's range is probably set by a few outliers
LOW_RANGE_USE = 0.2
#: above this share of float values outside the representable range the range clips real values
HIGH_CLIP = 0.01


@dataclass(frozen=True)
class LayerDebug:
    """One layer's output tensor against its float reference (SQNR in dB; inf: identical)."""

    index: int
    name: str  # the node
    op: str
    tensor: str  # the output tensor (its source model name: what --tensor-* options take)
    bits: int
    scale: float
    zero_point: int
    reference: str  # "onnxruntime" | "float simulator"
    sqnr: float
    own_sqnr: float | None  # None: an input has no float reference
    cosine: float | None
    clipped: float
    range_use: float
    suggestion: str | None = None
    #: an int8 .tflite model: the share of this tensor's elements equal to LiteRT's (reference kernels) same tensor
    litert_match: float | None = None


@dataclass(frozen=True)
class OutputDebug:
    name: str
    sqnr: float
    agreement: float | None  # top-1 agreement with float (None: not a class vector)


@dataclass(frozen=True)
class DeviceMismatch:
    """The first byte where the device's layer output differs from the simulator's."""

    layer: int
    name: str
    patch: int | None  # the patch (per-patch stage) or None (a whole layer)
    element: int  # index in the dumped buffer (bytes; packed for sub-byte maps)
    coords: tuple[int, ...] | None  # (n, h, w, c) in the layer's output tensor, for 8-bit 4-D maps
    device: int
    simulator: int


@dataclass(frozen=True)
class DeviceCheck:
    board: str
    dumps: int  # layer outputs read back (a per-patch layer once per patch)
    layers: int
    mismatch: DeviceMismatch | None
    note: str = ""
    chain_mismatch: bool = False  # the device's chain of some patch differs from the simulator's (note says)

    @property
    def bit_exact(self) -> bool:
        return self.mismatch is None and not self.chain_mismatch


@dataclass(frozen=True)
class DebugResult:
    model: str
    board: str
    samples: int
    layers: tuple[LayerDebug, ...]  # worst own SQNR first
    outputs: tuple[OutputDebug, ...]
    device: DeviceCheck | None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return "inf" if v > 0 else "-inf"
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return clean(asdict(self))

    def format(self) -> str:
        refs = sorted({layer.reference for layer in self.layers})
        lines = [f"mcucompile debug: {Path(self.model).name} for {self.board}, {self.samples} test input"
                 f"{'s' if self.samples != 1 else ''}; float reference: {', '.join(refs)}"]
        for o in self.outputs:
            agree = f", top-1 agreement {100 * o.agreement:.1f}%" if o.agreement is not None else ""
            lines.append(f"output '{o.name}': SQNR {_db(o.sqnr)} vs float{agree}")
        lines.append("layers, worst own SQNR first (own: the integer layer against the float op on the same "
                     "inputs; SQNR: against the float model, with the error of the layers before it)")
        head = (f"{'#':>3}  {'layer':<34} {'op':<17} {'bits':>4} {'scale':>10} {'zp':>5} {'own SQNR':>9} {'SQNR':>9} "
                f"{'cosine':>7} {'clipped':>8} {'range':>6}")
        with_litert = any(layer.litert_match is not None for layer in self.layers)
        if with_litert:
            head += f" {'=LiteRT':>8}"
        lines.append(head)
        for layer in self.layers:
            cos = f"{layer.cosine:.4f}" if layer.cosine is not None else "-"
            own = _db(layer.own_sqnr) if layer.own_sqnr is not None else "-"
            lines.append(f"{layer.index:>3}  {_short(layer.name, 34):<34} {layer.op:<17} {layer.bits:>4} "
                         f"{layer.scale:>10.4g} {layer.zero_point:>5} {own:>9} {_db(layer.sqnr):>9} {cos:>7} "
                         f"{100 * layer.clipped:>7.2f}% {100 * layer.range_use:>5.0f}%"
                         + (f" {_pct(layer.litert_match):>8}" if with_litert else ""))
        lines += [f"note: {n}" for n in self.notes]
        tips = [f"  {layer.suggestion}" for layer in self.layers if layer.suggestion]
        if tips:
            lines.append("to try (then run debug again to see the effect):")
            lines += tips[:5]
        if self.device is not None:
            lines.append(_format_device(self.device))
        return "\n".join(lines)


def _db(v: float) -> str:
    if v == math.inf:
        return "exact"
    return f"{v:.1f} dB"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else "..." + s[-(n - 3):]


def _format_device(d: DeviceCheck) -> str:
    if d.chain_mismatch:
        return f"device ({d.board}): {d.note}"
    if d.mismatch is None:
        return (f"device ({d.board}): every layer's output ({d.layers} layers, {d.dumps} outputs read back) bit-exact "
                f"with the simulator{'; ' + d.note if d.note else ''}")
    m = d.mismatch
    where = f" (patch {m.patch})" if m.patch is not None else ""
    at = (f" (n={m.coords[0]}, h={m.coords[1]}, w={m.coords[2]}, c={m.coords[3]} of its output)"
          if m.coords is not None else "")
    return (f"device ({d.board}): layer {m.layer} '{m.name}'{where} differs first, at element {m.element}{at}: "
            f"device {m.device}, simulator {m.simulator}")


# --- float references ----------------------------------------------------------------------------------------

def _vector_like(shape) -> bool:
    return sum(1 for d in shape if d != 1) <= 1


def _to_ir_layout(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """An onnxruntime tensor (NCHW) in the IR's layout (NHWC), or None when the two do not map one to one."""
    shape = tuple(shape)
    if arr.shape == shape:
        return arr
    if arr.ndim == 4 and len(shape) == 4 and arr.transpose(0, 2, 3, 1).shape == shape:
        return arr.transpose(0, 2, 3, 1)
    if arr.size == int(np.prod(shape)) and _vector_like(arr.shape) and _vector_like(shape):
        return arr.reshape(shape)
    return None


def _onnxruntime_tensors(compiled: Compiled, samples: np.ndarray) -> dict[str, list[np.ndarray]]:
    """{IR tensor: per-sample float value in IR layout} for the layer outputs a float ONNX model computes too."""
    if compiled.source_format != "onnx":
        return {}
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(compiled.model_path))
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        return {}  # a QDQ model: its float equivalent is the float simulator's graph
    g = compiled.graph
    produced = {o for n in model.graph.node for o in n.output if o}
    by_source: dict[str, str] = {}
    for node in g.nodes:
        name = node.outputs[0]
        src = g.tensors[name].origin or name
        if src in produced:
            by_source.setdefault(src, name)
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(s) for s in sorted(set(by_source) - present))
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - some graphs refuse exposed intermediates: the float simulator stands in
        return {}
    feed = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    out: dict[str, list[np.ndarray]] = {}
    for s in samples:
        values = dict(zip(names, sess.run(None, {feed: s[None].astype(np.float32)})))
        for src, ir in by_source.items():
            arr = _to_ir_layout(np.asarray(values[src], np.float64), g.tensors[ir].shape)
            if arr is not None:
                out.setdefault(ir, []).append(arr)
    return {k: v for k, v in out.items() if len(v) == len(samples)}


def _dequantized_constants(graph):
    """``graph`` with every quantized constant dequantized (weights per channel along their axis), for a float
    evaluation of an integer graph."""
    import dataclasses

    updates = []
    for t in graph.tensors.values():
        if not t.is_const or t.data is None or t.quant is None:
            continue
        s, zp = np.asarray(t.quant.scale, np.float64), np.asarray(t.quant.zero_point, np.float64)
        if t.quant.axis is not None:
            shape = [1] * t.data.ndim
            shape[t.quant.axis] = -1
            s, zp = s.reshape(shape), zp.reshape(shape)
        data = ((np.asarray(t.data, np.float64) - zp) * s).astype(np.float32)
        updates.append(dataclasses.replace(t, data=data, dtype="float32", quant=None))
    return graph.with_tensors(updates)


def _references(compiled: Compiled, samples: np.ndarray, progress: Progress):
    """Per tensor: float values over the samples [N, ...IR shape] and where they came from."""
    fg = _float_graph(compiled)
    inp = fg.inputs[0]
    sim: dict[str, list[np.ndarray]] = {}
    with progress.step("float simulator", total=len(samples)) as step:
        for s in samples:
            vals = run_float(fg, {inp: to_physical(fg, inp, s[None])}, keep_all=True)
            for k, v in vals.items():
                sim.setdefault(k, []).append(np.asarray(v, np.float64))
            step.advance()
    with progress.step("onnxruntime with the intermediate tensors"):
        ort_vals = _onnxruntime_tensors(compiled, samples)
    refs, source = {}, {}
    for k, v in sim.items():
        if k in ort_vals:
            refs[k], source[k] = np.stack(ort_vals[k]), "onnxruntime"
        else:
            refs[k], source[k] = np.stack(v), "float simulator"
    return refs, source


def _litert_tensors(compiled: Compiled, samples_q: np.ndarray) -> dict[str, np.ndarray]:
    """{IR tensor: [N, ...IR shape] int values} of an int8 .tflite model's intermediate tensors as LiteRT's
    reference kernels compute them (the integer ground truth, tensor by tensor); {} for other models."""
    if compiled.source_format != "tflite":
        return {}
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:
        return {}
    interp = litert.Interpreter(model_path=str(compiled.model_path), experimental_preserve_all_tensors=True,
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    if np.dtype(detail["dtype"]) != np.int8:
        return {}
    by_name = {d["name"]: d for d in interp.get_tensor_details()}
    g = compiled.graph
    wanted = {}
    for node in g.nodes:
        name = node.outputs[0]
        d = by_name.get(g.tensors[name].origin or name)
        if d is not None and int(np.prod(d["shape"])) == g.tensors[name].size and np.dtype(d["dtype"]) == np.int8:
            wanted[name] = d["index"]
    out: dict[str, list[np.ndarray]] = {}
    for s in samples_q:
        interp.set_tensor(detail["index"], s.astype(np.int8).reshape(detail["shape"]))
        interp.invoke()
        for name, index in wanted.items():
            out.setdefault(name, []).append(np.asarray(interp.get_tensor(index)).reshape(g.tensors[name].shape))
    return {k: np.stack(v) for k, v in out.items()}


# --- statistics ----------------------------------------------------------------------------------------------

def sqnr_db(ref: np.ndarray, x: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``x`` against ``ref`` (dB; inf when identical)."""
    noise = float(np.sum((np.asarray(ref, np.float64) - x) ** 2))
    signal = float(np.sum(np.asarray(ref, np.float64) ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def cosine(ref: np.ndarray, x: np.ndarray) -> float | None:
    a, b = np.asarray(ref, np.float64).ravel(), np.asarray(x, np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else None


def _suggest(tensor: str, clipped: float, range_use: float) -> str | None:
    if clipped > HIGH_CLIP:
        return f"--tensor-calibration {tensor}=minmax   ({100 * clipped:.1f}% of its float values are clipped)"
    if range_use < LOW_RANGE_USE:
        return (f"--tensor-calibration {tensor}=mse   (its values use {100 * range_use:.0f}% of the integer range: "
                "a few outliers set it)")
    return None


def _layer_stats(compiled: Compiled, ints: dict[str, np.ndarray], refs: dict, source: dict,
                 litert: dict[str, np.ndarray]) -> list[LayerDebug]:
    g = compiled.graph
    # only a calibrated range can be changed by a calibration option (an op fixes a softmax's, the model a QDQ's)
    calibrated = set(compiled.report.quantization.calibrated)
    rows = []
    for index, node in enumerate(g.nodes):
        name = node.outputs[0]
        t = g.tensors[name]
        if t.quant is None or name not in refs or name not in ints:
            continue
        q, ref, got = t.quant, refs[name], ints[name]
        deq = dequantize_values(got, q)
        own = _own_output(compiled, node, ints)
        lo, hi = qrange(t.bits)
        s = np.asarray(q.s, np.float64)
        low, high = s * (lo - np.asarray(q.zp)) - s / 2, s * (hi - np.asarray(q.zp)) + s / 2
        clipped = float(np.mean((ref < low) | (ref > high)))
        range_use = float((int(got.max()) - int(got.min())) / (hi - lo))
        src = t.origin or name
        rows.append(LayerDebug(
            index=index, name=node.name, op=node.op, tensor=src, bits=t.bits,
            scale=float(np.max(s)), zero_point=int(np.max(np.asarray(q.zp))), reference=source[name],
            sqnr=sqnr_db(ref, deq), own_sqnr=sqnr_db(*own) if own is not None else None,
            cosine=cosine(ref, deq), clipped=clipped, range_use=range_use,
            suggestion=_suggest(src, clipped, range_use) if src in calibrated else None,
            litert_match=float(np.mean(litert[name] == got)) if name in litert else None))
    rows.sort(key=lambda r: (r.own_sqnr if r.own_sqnr is not None else math.inf, r.sqnr))
    return rows


def _float_graph(compiled: Compiled):
    """The graph the float reference runs: the float model's; for an int8 .tflite model (no float model exists)
    the integer graph itself with its constants dequantized, evaluated in float."""
    if compiled.source_format == "tflite":
        return _dequantized_constants(compiled.graph)
    return compiled.float_graph


def _own_output(compiled: Compiled, node, ints: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The layer's own error, as TFLite's quantization debugger measures it: its integer output and the float
    op run on the same inputs dequantized (so the error of the layers before it is not counted); None when the
    float graph has no such node. Returns (float op output, dequantized integer output)."""
    g, fg = compiled.graph, _float_graph(compiled)
    fnode = next((n for n in fg.nodes if n.name == node.name and n.op == node.op), None)
    if fnode is None or len(fnode.inputs) != len(node.inputs):
        return None
    n_samples = len(ints[node.outputs[0]])
    ref, deq = [], []
    for k in range(n_samples):
        vals = {}
        for i, fi in zip(node.inputs, fnode.inputs):
            if not i or g.tensors[i].is_const:
                continue
            if i not in ints or g.tensors[i].quant is None or not fi:
                return None
            vals[fi] = dequantize_values(ints[i][k], g.tensors[i].quant).reshape(fg.tensors[fi].shape).astype(np.float32)
        ref.append(np.asarray(eval_node(fg, fnode, node_inputs(fg, fnode, vals), False)[0], np.float64))
        deq.append(dequantize_values(ints[node.outputs[0]][k], g.tensors[node.outputs[0]].quant))
    return np.stack(ref).reshape(np.shape(deq)), np.stack(deq)


def _output_stats(compiled: Compiled, ints: dict, refs: dict) -> list[OutputDebug]:
    g = compiled.graph
    rows = []
    for o in g.outputs:
        if o not in refs:
            continue
        deq = dequantize_values(ints[o], g.tensors[o].quant)
        ref = refs[o]
        flat_r, flat_d = ref.reshape(len(ref), -1), deq.reshape(len(deq), -1)
        agree = float(np.mean(flat_r.argmax(1) == flat_d.argmax(1))) if flat_r.shape[1] > 1 else None
        rows.append(OutputDebug(o, sqnr_db(ref, deq), agree))
    return rows


# --- the device ----------------------------------------------------------------------------------------------

def _expected_dumps(compiled: Compiled, values: dict[str, np.ndarray], taken: list[int] | None = None,
                    chain_values: tuple[dict[str, np.ndarray], ...] = ()):
    """(layer index, patch or None, expected bytes, region) in the order the firmware runs its layers.

    A patch loop with a run-time dispatch (QuantMCU) dumps what each patch executes, along the chain it took
    (``taken``, from the simulator): the probe's layers up to the check, then the rest of the probe, or the
    outlier chain from where it resumes (from the start when it cannot resume; as its sub-patches, each from the
    input up, when it runs them); ``chain_values[k]``: chain k's maps over the whole input, each patch's region
    of which is what the patch computes (patched execution equals layer-by-layer execution on every region)."""
    g, sched = compiled.graph, compiled.schedule
    loop = sched.loop
    out = []

    def region_dumps(steps, vals, regs, patch):
        for step in steps:
            name = step.node.outputs[0]
            r = regs[name]
            v = vals[name][:, r.top : r.bottom, r.left : r.right, :]
            out.append((step.index, patch, _bytes(v, g.tensors[name].bits), r))

    if loop is not None and loop.runtime:
        d, ck, sub = loop.dispatch, loop.check, loop.sub
        probe = loop.chains[d.inlier_chain].steps
        for p, regs in enumerate(loop.plan.regions):
            region_dumps(probe[: ck.after], chain_values[d.inlier_chain], regs, p)
            c = taken[p]
            steps = loop.chains[c].steps
            if c == d.inlier_chain:
                region_dumps(probe[ck.after :], chain_values[c], regs, p)
            elif sub is not None and c == sub.chain:
                for q in sub.of_patch[p]:
                    region_dumps(steps, chain_values[c], sub.plan.regions[q], p)
            else:
                region_dumps(steps[ck.after :] if ck.resume else steps, chain_values[c], regs, p)
    elif loop is not None:
        plan = loop.plan
        chain_of = tuple(loop.chain_of(p) for p in range(plan.patches))
        for p, regs in enumerate(plan.regions):
            region_dumps(loop.chains[chain_of[p]].steps, chain_values[chain_of[p]] if chain_values else values,
                         regs, p)
    for step in sched.rest.steps:
        name = step.node.outputs[0]
        out.append((step.index, None, _bytes(values[name], g.tensors[name].bits), None))
    return out


def device_values(compiled: Compiled, x_q: np.ndarray) -> tuple[dict[str, np.ndarray], list[int] | None,
                                                                 tuple[dict[str, np.ndarray], ...]]:
    """What the device computes on the int8 input ``x_q``: every tensor's value (the stage output and the layers
    after it as the patch loop makes them), the chain each patch took (None: one chain, or fixed at compile
    time) and, for a patch loop with several chains, each chain's maps over the whole input.

    A loop with several chains is evaluated chain by chain over the whole input, the stage output assembled from
    each patch's tile of the chain it took; that equals the schedule's simulator (checked here, so the dumps are
    compared with exactly what verify compares the outputs with)."""
    g, sched = compiled.graph, compiled.schedule
    loop = sched.loop if sched is not None else None
    if loop is None or len(loop.chains) == 1:
        return run_int(g, {g.inputs[0]: x_q}, keep_all=True), None, ()
    x = np.asarray(x_q).reshape(g.tensors[g.inputs[0]].shape)
    chain_values = tuple(run_nodes(g, [st.node for st in ch.steps], {g.inputs[0]: x}, integer=True)
                         for ch in loop.chains)
    taken: list[int] = []
    expected = run_schedule_int(sched, {g.inputs[0]: x}, taken)
    if not loop.runtime:
        taken = [loop.chain_of(p) for p in range(loop.plan.patches)]
    split = loop.plan.split
    stage_out = np.array(chain_values[0][split])
    for p, regs in enumerate(loop.plan.regions):
        r = regs[split]
        stage_out[:, r.top : r.bottom, r.left : r.right, :] = chain_values[taken[p]][split][:, r.top : r.bottom,
                                                                                           r.left : r.right, :]
    values = {**chain_values[0], **run_nodes(g, g.nodes[loop.plan.stage_len :], {split: stage_out}, integer=True)}
    for o in g.outputs:
        if not np.array_equal(np.asarray(values[o]).reshape(-1), np.asarray(expected[o]).reshape(-1)):
            raise AssertionError(f"the chains evaluated over the whole input give another output '{o}' than the "
                                 "schedule's simulator: the dumps cannot be predicted (a bug)")
    return values, (taken if loop.runtime else None), chain_values


def _bytes(v: np.ndarray, bits: int) -> bytes:
    return np.asarray(pack(np.asarray(v), bits)).astype(np.uint8).tobytes() if bits < 8 else \
        np.asarray(v).astype(np.int8).tobytes()


def _chain_lines(log: str) -> list[int]:
    """The first input's chain per patch from the debug firmware's ``MCU CHAIN <patch> <chain>`` lines."""
    chains: dict[int, int] = {}
    for line in log.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["MCU", "CHAIN"]:
            chains[int(parts[2])] = int(parts[3])
    return [chains[p] for p in sorted(chains)]


def _dumps(log: str) -> list[tuple[int, bytes]]:
    out = []
    for line in log.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "MCU" and parts[1] == "DUMP":
            out.append((int(parts[2]), bytes.fromhex("".join(parts[3:]))))
    return out


def device_check(compiled: Compiled, sample: np.ndarray, out_dir: Path, timeout: float = 600.0,
                 edit_project: Callable[[Path], None] | None = None) -> DeviceCheck:
    """Build the debug firmware (every layer's output printed) for ``sample`` (logical float [..]), run it on the
    emulated board and compare each layer's output with the simulator byte for byte.

    ``edit_project(out_dir)`` runs between writing the project and building it (tests break a kernel with it)."""
    board = compiled.board
    if board.qemu_machine is None:
        raise UserError(f"debug on the device needs an emulated board (qemu-m4, qemu-m7, qemu-m55, ...); "
                        f"'{board.name}' is a real board: use --board host for the quantization part, or the "
                        "emulated board with its core")
    require_tool("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    x_q = quantize_input(compiled, sample[None])
    out = write_library(compiled, out_dir, x_q, debug_dump=True)
    if edit_project is not None:
        edit_project(out)
    progress = Progress(compiled.options.progress)
    with progress.step(f"building the debug firmware for {board.name}"):
        elf = build_firmware(out)
    with progress.step(f"running it on {board.name} (QEMU)"):
        run = run_qemu(elf, board, timeout=timeout)
    g = compiled.graph
    values, taken, chain_values = device_values(compiled, x_q[0])
    expected = _expected_dumps(compiled, values, taken, chain_values)
    got = _dumps(run.log)
    loop = compiled.schedule.loop
    names = {i: n.name for i, n in enumerate(g.nodes)}
    note = ""
    if loop is not None and loop.runtime:
        device = _chain_lines(run.log)
        counts = ", ".join(f"chain {k}: {taken.count(k)}" for k in range(len(loop.chains)))
        if device and device != taken:
            differ = sum(a != b for a, b in zip(device, taken)) + abs(len(device) - len(taken))
            return DeviceCheck(board.name, len(got), len({e[0] for e in expected}), None,
                               f"the device's chains differ from the simulator's in {differ} patches "
                               f"(device {device}, simulator {taken})", chain_mismatch=True)
        note = (f"the per-patch stage compared patch by patch along the chain each took ({counts}; "
                f"{'the device reported the same chains' if device else 'chains from the simulator'})")
    elif loop is not None:
        note = "the per-patch stage compared patch by patch"
    layers = len({e[0] for e in expected})
    for k, (layer, patch, want, region) in enumerate(expected):
        if k >= len(got):
            raise UserError(f"the debug firmware on {board.name} printed {len(got)} layer outputs, {len(expected)} were "
                            f"expected (stopped at layer {layer} '{names.get(layer)}'); its log ends: {run.log[-300:]!r}")
        dev_layer, data = got[k]
        if dev_layer != layer or len(data) != len(want):
            raise UserError(f"the debug firmware's output {k} is layer {dev_layer} ({len(data)} B), layer {layer} "
                            f"({len(want)} B) was expected: the firmware and this mcucompile do not match; rebuild it")
        if data != want:
            a, b = np.frombuffer(data, np.uint8), np.frombuffer(want, np.uint8)
            e = int(np.flatnonzero(a != b)[0])
            t = g.tensors[g.nodes[layer].outputs[0]]
            coords = None
            if t.bits == 8 and len(t.shape) == 4:
                h, w, c = (region.h, region.w, t.shape[3]) if region is not None else t.shape[1:]
                n, rem = divmod(e, h * w * c)
                y, rem = divmod(rem, w * c)
                x, ch = divmod(rem, c)
                if region is not None:
                    y, x = y + region.top, x + region.left
                coords = (n, y, x, ch)
            signed = t.bits == 8
            dv = int(a[e].astype(np.int8)) if signed else int(a[e])
            sv = int(b[e].astype(np.int8)) if signed else int(b[e])
            return DeviceCheck(board.name, len(got), layers,
                               DeviceMismatch(layer, names[layer], patch, e, coords, dv, sv), note)
    return DeviceCheck(board.name, len(got), layers, None, note)


# --- the command ---------------------------------------------------------------------------------------------

def debug_model(compiled: Compiled, samples: np.ndarray, out_dir: Path | None = None, timeout: float = 600.0,
                edit_project: Callable[[Path], None] | None = None) -> DebugResult:
    """Layer-by-layer comparison over ``samples`` (logical float [N, ...]) of the int8 model with its float
    reference, and, on an emulated board, of every layer's device output (first sample) with the simulator."""
    if len(samples) == 0:
        raise UserError("debug needs at least one test input: give --data (or --calib) with samples")
    progress = Progress(compiled.options.progress)
    g = compiled.graph
    samples_q = quantize_input(compiled, samples)
    ints: dict[str, list[np.ndarray]] = {}
    with progress.step("integer simulator", total=len(samples_q)) as step:
        for s in samples_q:
            for k, v in run_int(g, {g.inputs[0]: s}, keep_all=True).items():
                ints.setdefault(k, []).append(np.asarray(v))
            step.advance()
    ints_n = {k: np.stack(v) for k, v in ints.items()}
    refs, source = _references(compiled, samples, progress)
    with progress.step("LiteRT's intermediate tensors"):
        litert = _litert_tensors(compiled, samples_q)
    with progress.step("per-layer statistics"):
        layers = _layer_stats(compiled, ints_n, refs, source, litert)
        outputs = _output_stats(compiled, ints_n, refs)
    device = None
    if compiled.board.name != "host":
        if out_dir is None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="mcucompile-debug-") as tmp:
                device = device_check(compiled, samples[0], Path(tmp) / "fw", timeout, edit_project)
        else:
            device = device_check(compiled, samples[0], Path(out_dir), timeout, edit_project)
    notes = ()
    loop = compiled.schedule.loop if compiled.schedule is not None else None
    low = loop is not None and any(g.tensors[st.node.outputs[0]].bits < 8 for ch in loop.chains for st in ch.steps)
    if low and not loop.runtime:  # a check that cannot fire was dropped: the low-bit chain on every patch
        notes = ("the per-layer table is the 8-bit model's; every patch runs the low-bit chain (no outlier check: it "
                 "could not fire): verify gives its quality against the 8-bit model and float, the device check "
                 "below compares it layer by layer",)
    elif low:
        notes = ("the per-layer table is the 8-bit model's (the patches with outliers run it); the patches without "
                 "run the low-bit chain, chosen on the device per patch: verify gives its quality against the 8-bit "
                 "model and float, the device check below compares it layer by layer",)
    return DebugResult(str(compiled.model_path), compiled.board.name, len(samples), tuple(layers), tuple(outputs),
                       device, notes)


def debug_section(result: DebugResult):
    """report.html's section for a debug run: outputs, the per-layer table (worst first), own SQNR per layer in
    schedule order, the device check."""
    from ..report.html import BarChart, Cell, Facts, HtmlSection, Paragraph, Table

    def db(v):
        if v is None:
            return Cell("-", None)
        return Cell("exact", None) if v == math.inf else Cell(f"{v:.1f} dB", round(v, 3))

    blocks = [Facts((("samples", str(result.samples)), ("board", result.board),
                     ("float reference", ", ".join(sorted({layer.reference for layer in result.layers})))))]
    if result.outputs:
        blocks.append(Table(("output", "SQNR vs float", "top-1 agreement"),
                            tuple((o.name, db(o.sqnr), Cell(f"{100 * o.agreement:.1f}%", o.agreement)
                                   if o.agreement is not None else None) for o in result.outputs)))
    blocks.append(Table(
        ("#", "layer", "op", "tensor", "bits", "scale", "zero point", "own SQNR", "SQNR", "cosine", "clipped", "range use",
         "to try"),
        tuple((layer.index, layer.name, layer.op, layer.tensor, layer.bits, layer.scale, layer.zero_point,
               db(layer.own_sqnr), db(layer.sqnr), layer.cosine, Cell(f"{100 * layer.clipped:.2f}%", layer.clipped),
               Cell(f"{100 * layer.range_use:.0f}%", layer.range_use), layer.suggestion or "")
              for layer in result.layers),
        "worst own SQNR first; own: the integer layer against the float op on the same (dequantized) inputs; "
        "SQNR: against the float model, with the error of the layers before it"))
    ordered = sorted(result.layers, key=lambda layer: layer.index)
    finite = [layer for layer in ordered if layer.own_sqnr is not None and math.isfinite(layer.own_sqnr)]
    if finite:
        blocks.append(BarChart("SQNR per layer", tuple(str(layer.index) for layer in finite),
                               (("own SQNR", tuple(layer.own_sqnr for layer in finite)),
                                ("SQNR", tuple(min(layer.sqnr, 200.0) for layer in finite))), "dB", "layer"))
    blocks += [Paragraph(n) for n in result.notes]
    if result.device is not None:
        blocks.append(Paragraph(_format_device(result.device), "ok" if result.device.bit_exact else "error"))
    return HtmlSection("debug", f"Debug on {result.board}", tuple(blocks))
