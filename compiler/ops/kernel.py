"""What a C kernel implementation states about itself, so no stage keeps a table of kernels.

An op's ``kernel(node, graph, board)`` returns a :class:`KernelCall`: the :class:`Kernel` it calls (the
implementation: template, access pattern, cost terms), the values the template renders (numpy arrays
among them are constants the implementation owns) and the caller scratch it needs. The stages consume it:

- the plan memory-safety check (``schedule/safety.py``) builds the call's :class:`KernelArgs` (pointers,
  dims and padding as the generated code passes them) and asks ``Kernel.access`` for the byte ranges
  the kernel reads and writes and for the argument-contract violations it would refuse at run time;
- the instruction-cost model (``patch/cost.py``) asks ``Kernel.cost`` for one call's counts on a
  :data:`Geometry` and prices them with the kernel's own fitted coefficients;
- the memory planner and code generation take ``KernelCall.scratch_bytes``.

A new implementation of an op (a DSP, MVE or CMSIS-NN kernel for some board) is one more
:class:`Kernel` declared in the op's module and returned by its ``kernel()``: nothing outside ``ops/``
changes. What ``kernel()`` chooses from is a :class:`KernelTarget` (the board and the ``--kernels``
policy; :func:`kernel_target` also takes a bare ``boards.Board`` or None), and a call that falls back to the
portable kernel where the op has a fast one says why (``KernelCall.reason``).

Every :class:`Kernel` is recorded in :data:`KERNELS` (by template) as it is declared, so the fitting script
and the tests can list them, as :data:`~.base.REGISTRY` lists the ops.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping

import numpy as np

from ..arith.bitwidth import c_array_type
from ..boards import Board
from ..ir import Graph, LocalWindow, Node
from .spatial import as_nhwc

Dims = tuple[int, int, int, int]

#: Spatial extent of one kernel call: input buffer, output, top/left padding (negative: a start offset into
#: a larger input buffer, as in a patch): exactly how a windowed op runs in a patch.
Geometry = LocalWindow


@dataclass(frozen=True)
class Access:
    """Bytes [start, end) from the pointer the C passes for ``pointer`` (a plan name, or a constant)."""

    pointer: str
    start: int
    end: int
    write: bool
    role: str


@dataclass(frozen=True)
class KernelArgs:
    """What one kernel call receives, as the generated code passes it: pointers per input slot (None for
    an absent one; constants as ``const:<tensor>``, owned arrays through :meth:`array`), dims, padding
    (top, left; negative: a start offset), the call's own values and its scratch."""

    node: Node
    graph: Graph
    context: dict
    inputs: tuple[str | None, ...]
    output: str
    in_dims: tuple[Dims, ...]  # per activation input, in slot order
    out_dims: Dims
    pads: tuple[int, int]
    patched: bool
    scratch: str | None = None  # the scratch buffer's plan name (None: none passed)
    scratch_bytes: int = 0  # the scratch the call declares (KernelCall.scratch_bytes)

    def array(self, key: str) -> str:
        """The pointer of the owned constant array ``context[key]``."""
        return array_pointer(self.node, key)


def array_pointer(node: Node, key: str) -> str:
    """Pointer name of the constant array ``key`` a layer's kernel call owns (its multipliers, table...)."""
    return f"array:{node.name}:{key}"


AccessFn = Callable[[KernelArgs], tuple[list[Access], list[str]]]
CountsFn = Callable[[Node, Graph, Geometry], dict[str, float]]


@dataclass(frozen=True)
class KernelCost:
    """The kernel's instruction cost: linear in ``features`` (counts of one call, from ``counts``), at
    ``coefficients`` instructions per unit, fitted by ``bench/fit_cost_model.py`` (``note``: where the
    numbers came from when they were not fitted). ``counts`` may return more keys than ``features``; they
    cost nothing."""

    features: tuple[str, ...]
    coefficients: Mapping[str, float]
    counts: CountsFn
    note: str = ""


#: values of ``--kernels`` (``CompileOptions.kernels``): "auto" takes the fastest kernel mcucompile has for
#: the core, "portable" the reference C kernels of mcunn.h everywhere, "cmsis-nn" Arm's CMSIS-NN for every
#: layer it runs bit-exactly (``ops/cmsis_nn.py``) and the "auto" kernels for the rest
KERNEL_POLICIES = ("auto", "portable", "cmsis-nn")


@dataclass(frozen=True)
class KernelTarget:
    """What kernel selection looks at: the board (its core's extensions) and the ``--kernels`` policy.

    Passed where the stages pass a board (``board=`` of the planners, the safety check, the schedule), so
    the policy reaches every ``kernel(node, graph, board)`` call without a mutated :class:`~..boards.Board`.
    """

    board: Board | None  # None: no board known (the portable kernels)
    kernels: str = "auto"
    #: prefer kernels without caller scratch where the fastest needs some (mcu_conv_1x1_dsp_s8 for 1x1
    #: convolutions, the portable kernels for other convolutions; FC and depthwise keep their fast kernels, whose
    #: scratch is none or small): the plan has to fit an SRAM budget the scratch breaks,
    #: or --optimize memory asks for the lowest peak
    lean: bool = False
    #: the same for these layers only (each named by its output tensor): the layers whose fast kernel's scratch
    #: sits above an SRAM budget, so the others keep their fast kernels (``api.compile.fit_scratch``)
    lean_layers: frozenset[str] = frozenset()

    def __post_init__(self):
        if self.kernels not in KERNEL_POLICIES:
            raise ValueError(f"kernel policy '{self.kernels}' is not one of {KERNEL_POLICIES}")

    def auto(self) -> KernelTarget:
        """This target under the ``auto`` policy: what a layer CMSIS-NN does not run takes (``ops/cmsis_nn.py``)."""
        return KernelTarget(self.board, "auto", self.lean, self.lean_layers)

    def dsp_problem(self) -> str | None:
        """Why the SIMD32 (DSP extension) kernels may not run here (None: they may)."""
        if self.kernels == "portable":
            return "--kernels portable"
        if self.board is None:
            return "no board given (portable kernels)"
        if not self.board.dsp:
            return f"no DSP extension on {self.board.core}"
        return None

    def mve_problem(self) -> str | None:
        """Why the MVE (Helium) kernels may not run here (None: they may; they come before the DSP ones)."""
        if self.kernels == "portable":
            return "--kernels portable"
        if self.board is None:
            return "no board given (portable kernels)"
        if not self.board.mve:
            return f"no MVE on {self.board.core}"
        return None

    def scratch_problem(self, scratch_bytes: int, kind: str = "DSP", layer: str | None = None) -> str | None:
        """Why a fast kernel (of ``kind``: "DSP", "MVE") needing ``scratch_bytes`` of caller scratch is not taken
        for the layer writing ``layer`` (None: it is)."""
        if scratch_bytes > 0 and (self.lean or layer in self.lean_layers):
            return f"its {kind} kernel needs {scratch_bytes} B of scratch (scratch-free kernels for a lower peak SRAM)"
        return None


def kernel_target(board) -> KernelTarget:
    """The :class:`KernelTarget` of what a stage passes as ``board``: a target as it is, a
    ``boards.Board`` with the ``auto`` policy (its fastest kernels), None: the portable kernels."""
    if isinstance(board, KernelTarget):
        return board
    if board is None:
        return KernelTarget(None, "portable")
    return KernelTarget(board, "auto")


@dataclass(frozen=True)
class Kernel:
    """One C kernel implementation: the template under ``codegen/templates/kernels/`` that calls it, its
    access pattern (``access(args) -> (accesses, contract violations)``, from the kernel's documented
    loops in ``runtime_c/include/mcunn.h``, never from the planner's size formulas) and its cost.

    ``fast``: an optimised implementation (the report's ``fast_mac_share`` counts the MACs it runs);
    ``header``: the runtime header declaring its C function; ``replaces``: the input slots whose constant
    tensor the kernel does not read because it takes its own array instead (weights laid out for it, a bias
    with the input offset folded in), so code generation does not emit that tensor."""

    template: str
    access: AccessFn = field(compare=False)
    cost: KernelCost = field(compare=False)
    fast: bool = False
    header: str = "mcunn.h"
    replaces: tuple[int, ...] = ()
    #: reads or writes packed 4- / 2-bit maps (any other kernel reads and writes one value per byte: the plan
    #: safety check refuses a layer whose kernel does not take the maps its tensors hold)
    packed: bool = False

    def __post_init__(self):
        known = KERNELS.get(self.template)
        if known is not None and known.access.__module__ != self.access.__module__:
            # two implementations behind one template would share its C call but not their facts
            raise ValueError(f"kernel template '{self.template}' is declared by {known.access.__module__} and by "
                             f"{self.access.__module__}: give each implementation its own template")
        KERNELS[self.template] = self

    @property
    def name(self) -> str:
        """The cost model's name for it: the template's stem (``conv`` for ``conv.c.j2``)."""
        return self.template.split(".")[0]

    def call(self, context: dict, scratch_bytes: int = 0, reason: str | None = None) -> KernelCall:
        """A call of this implementation with the template's ``context`` and ``scratch_bytes`` of caller
        scratch; ``reason``: why the op's fast implementation was not taken (a portable fallback)."""
        return KernelCall(self.template, context, scratch_bytes, self, reason)


#: every declared kernel implementation, by template (filled as the op modules are imported)
KERNELS: dict[str, Kernel] = {}


@dataclass(frozen=True)
class KernelCall:
    """What the code generator needs for one layer: a kernel template and its values, the caller scratch
    the kernel needs (bytes; mirrors its C ``_get_buffer_size``) and the implementation (``impl``) it
    calls. Numpy arrays among the values are constants the implementation owns (multipliers, shifts,
    tables; later weights in the kernel's own layout or a folded bias): codegen emits them ``const`` in
    flash."""

    template: str  # file under codegen/templates/kernels/
    context: dict = field(default_factory=dict)
    scratch_bytes: int = 0
    impl: Kernel | None = None  # None: the implementation declared for ``template``, if any
    reason: str | None = None  # why the op's fast kernel was not taken (None: it was, or the op has none)

    @property
    def kernel(self) -> Kernel | None:
        """The implementation called: its access pattern and cost (None when none is declared)."""
        return self.impl if self.impl is not None else KERNELS.get(self.template)

    @property
    def name(self) -> str:
        return self.template.split(".")[0]

    @property
    def constants(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.context.items() if isinstance(v, np.ndarray)}

    @property
    def constants_bytes(self) -> int:
        """Flash the owned constants take, as the generated arrays store them."""
        return sum(v.size * c_array_type(v)[1] for v in self.constants.values())


# --- helpers the access patterns share -------------------------------------------------------------------

def prod(d) -> int:
    return int(np.prod(d, dtype=np.int64)) if len(d) else 1


def read(pointer: str, n: int, role: str, start: int = 0) -> Access:
    return Access(pointer, start, start + n, False, role)


def write(pointer: str, n: int, role: str, start: int = 0) -> Access:
    return Access(pointer, start, start + n, True, role)


def window_extent(in_d: Dims, out_d: Dims, kernel, stride, dilation, pads) -> int:
    """One past the last input byte a window kernel touches: the kernels skip taps outside the input
    dims, so rows and columns are clipped to them."""
    n, h, w, c = in_d
    _, oh, ow, _ = out_d
    if min(n, oh, ow, h, w, c) <= 0:
        return 0
    last_y = min(h - 1, (oh - 1) * stride[0] - pads[0] + (kernel[0] - 1) * dilation[0])
    last_x = min(w - 1, (ow - 1) * stride[1] - pads[1] + (kernel[1] - 1) * dilation[1])
    if last_y < 0 or last_x < 0:
        return 0
    return (((n - 1) * h + last_y) * w + last_x + 1) * c


def quant_arrays(args: KernelArgs, channels: int) -> list[Access]:
    """The per-channel int32 multiplier and shift arrays a weighted kernel reads."""
    return [read(args.array(k), 4 * channels, k) for k in ("multiplier", "shift")]


def same_size_access(args: KernelArgs) -> tuple[list[Access], list[str]]:
    """An element-by-element kernel of one input (size elements in and out): input and output dims must
    hold the same element count."""
    size = prod(args.in_dims[0])
    contract = [] if prod(args.out_dims) == size else [
        f"input dims {list(args.in_dims[0])} and output dims {list(args.out_dims)} differ in element count"]
    return [read(args.inputs[0], size, "input"), write(args.output, size, "output")], contract


# --- helpers the cost counts share ------------------------------------------------------------------------

@functools.lru_cache(maxsize=65536)
def valid_taps(n_in: int, n_out: int, k: int, stride: int, dilation: int, pad: int) -> int:
    """Sum over output positions of the kernel taps that land inside the input (the kernels skip the rest)."""
    total = 0
    for o in range(n_out):
        start = o * stride - pad
        lo = 0 if start >= 0 else (-start + dilation - 1) // dilation
        hi = min(k - 1, (n_in - 1 - start) // dilation)
        total += max(0, hi - lo + 1)
    return total


def base_counts(node: Node, graph: Graph, g: Geometry) -> dict[str, float]:
    """Every call's counts: one call, and the output elements of the geometry's region."""
    c_out = as_nhwc(tuple(graph.tensors[node.outputs[0]].shape))[3]
    return {"calls": 1.0, "outputs": float(g.out_h * g.out_w * c_out)}


def whole_outputs_counts(node: Node, graph: Graph, g: Geometry) -> dict[str, float]:
    """An element-by-element kernel: per call and per output element (the whole tensor when it is not a
    4-D map, which never runs in a patch)."""
    f = base_counts(node, graph, g)
    if len(graph.tensors[node.outputs[0]].shape) != 4:
        f["outputs"] = float(graph.tensors[node.outputs[0]].size)
    return f


def window_taps(node: Node, g: Geometry) -> tuple[int, int]:
    """(rows, columns) summed over output positions of the window taps inside the input."""
    win = node.attrs.window
    (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.stride, win.dilation
    return (valid_taps(g.in_h, g.out_h, kh, sh, dh, g.pad_top), valid_taps(g.in_w, g.out_w, kw, sw, dw, g.pad_left))
