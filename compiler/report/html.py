"""OUT/report.html: one self-contained page (inline CSS and SVG, no network, no libraries at run time) that
shows what the compiler did and what later commands measured.

The page is rendered from typed data only, :class:`HtmlReport`:

- the compile's :class:`~mcucompile.report.report.Report` (what report.json holds): the model summary, the
  per-layer table, the memory profile over the schedule and the flash breakdown, as SVG plots drawn here;
- optional :class:`BenchFigures` (``bench -o OUT``): the per-layer instructions or cycles column and its
  totals, and the ELF's flash and SRAM;
- result sections (:class:`HtmlSection`: ``verify -o OUT``, ``debug -o OUT``, ...), each built from generic
  blocks (:class:`Table`, :class:`Facts`, :class:`Paragraph`, :class:`BarChart`) so a command adds its
  results without this module knowing its result type. A section replaces an earlier one of its ``kind``.

The results (bench figures and sections) are embedded in the page as JSON, with a fingerprint of the report
they belong to, so a command writing into the same output folder keeps the results of the same compile
(:func:`carried_page`) and drops those of another. The numbers the page shows are also in ``data-*``
attributes (``data-key`` / ``data-value`` for the summary, one ``<tr data-index ...>`` per layer) so a tool
or a test reads them without parsing the formatted text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import math
import re
from dataclasses import dataclass
from typing import Union

from .report import QuantmcuReport, Report
from .summary import plan_choice_line, quantmcu_lines, short_tensor_name

#: Version of the embedded results' JSON (a page with another version carries nothing over).
RESULTS_FORMAT = 1
RESULTS_ID = "mcucompile-results"
KIND_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,31}")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#d62728")


# --- result data -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchFigures:
    """What ``bench`` measured on a board, as the page shows it (from ``api.bench.BenchResult``).

    ``counts`` maps a layer index (the report's) to its instructions (emulated boards, QEMU ``-icount``) or
    DWT cycles (real boards) for one inference; the ELF figures are ``arm-none-eabi-size``'s."""

    board: str
    unit: str  # "instructions" or "cycles"
    counts: tuple[tuple[int, int], ...]  # (layer index, count)
    total: int
    flash_bytes: int  # ELF text + data
    text_bytes: int
    data_bytes: int
    bss_bytes: int
    sram_bytes: int  # ELF data + bss
    arena_bytes: int
    estimated_instructions: int | None = None  # the cost model's estimate the plan was chosen with

    def count_of(self, index: int) -> int | None:
        return dict(self.counts).get(index)

    def to_json_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["counts"] = [list(c) for c in self.counts]
        return d

    @classmethod
    def from_json_dict(cls, d: dict) -> "BenchFigures":
        return cls(**{**d, "counts": tuple((int(i), int(c)) for i, c in d["counts"])})


@dataclass(frozen=True)
class Cell:
    """A table cell: the ``text`` shown and the ``value`` it sorts and is read by (a number, or None)."""

    text: str
    value: float | int | str | None = None


CellLike = Union[Cell, str, int, float, None]


def _cell(v: CellLike) -> Cell:
    if isinstance(v, Cell):
        return v
    if v is None:
        return Cell("-", None)
    if isinstance(v, bool):
        return Cell("yes" if v else "no", int(v))
    if isinstance(v, int):
        return Cell(f"{v:,}", v)
    if isinstance(v, float):
        return Cell(f"{v:.4g}", v) if math.isfinite(v) else Cell(str(v), None)
    return Cell(str(v), str(v))


@dataclass(frozen=True)
class Table:
    """A table block: ``columns`` headers and ``rows`` of cells (numbers are right-aligned and sortable).
    Plain values (str, int, float, None) become :class:`Cell` s, so ``rows`` always holds cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple[CellLike, ...], ...]
    caption: str = ""

    def __post_init__(self):
        for r in self.rows:
            if len(r) != len(self.columns):
                raise ValueError(f"table row {r!r} has {len(r)} cells for {len(self.columns)} columns")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "rows", tuple(tuple(_cell(c) for c in r) for r in self.rows))

    def to_json_dict(self) -> dict:
        return {"type": "table", "columns": list(self.columns), "caption": self.caption,
                "rows": [[dataclasses.asdict(c) for c in r] for r in self.rows]}


@dataclass(frozen=True)
class Facts:
    """Name / value pairs (a definition list), e.g. "samples: 20"."""

    items: tuple[tuple[str, str], ...]

    def to_json_dict(self) -> dict:
        return {"type": "facts", "items": [list(i) for i in self.items]}


@dataclass(frozen=True)
class Paragraph:
    """A line of text; ``tone`` "warning" or "error" draws attention to it."""

    text: str
    tone: str = "note"  # "note" | "warning" | "error" | "ok"

    def to_json_dict(self) -> dict:
        return {"type": "paragraph", "text": self.text, "tone": self.tone}


@dataclass(frozen=True)
class BarChart:
    """Grouped bars, one group per label (e.g. per layer), one bar per series, drawn as an SVG plot."""

    title: str
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (legend name, one value per label)
    y_label: str
    x_label: str = ""

    def __post_init__(self):
        for name, values in self.series:
            if len(values) != len(self.labels):
                raise ValueError(f"bar chart series {name!r} has {len(values)} values for {len(self.labels)} labels")

    def to_json_dict(self) -> dict:
        return {"type": "bar_chart", "title": self.title, "labels": list(self.labels), "y_label": self.y_label,
                "x_label": self.x_label, "series": [[n, [float(v) for v in vs]] for n, vs in self.series]}


Block = Union[Table, Facts, Paragraph, BarChart]


def _block_from_json(d: dict) -> Block:
    kind = d["type"]
    if kind == "table":
        rows = tuple(tuple(Cell(c["text"], c["value"]) for c in r) for r in d["rows"])
        return Table(tuple(d["columns"]), rows, d.get("caption", ""))
    if kind == "facts":
        return Facts(tuple((str(k), str(v)) for k, v in d["items"]))
    if kind == "paragraph":
        return Paragraph(d["text"], d.get("tone", "note"))
    if kind == "bar_chart":
        return BarChart(d["title"], tuple(d["labels"]), tuple((n, tuple(vs)) for n, vs in d["series"]),
                        d["y_label"], d.get("x_label", ""))
    raise ValueError(f"unknown report block type {kind!r}")


@dataclass(frozen=True)
class HtmlSection:
    """One command's results on the page (``kind`` e.g. "verify", "debug": one section per kind)."""

    kind: str
    title: str
    blocks: tuple[Block, ...]

    def __post_init__(self):
        if not KIND_PATTERN.fullmatch(self.kind):
            raise ValueError(f"section kind {self.kind!r}: lowercase letters, digits and '-'")

    def to_json_dict(self) -> dict:
        return {"kind": self.kind, "title": self.title, "blocks": [b.to_json_dict() for b in self.blocks]}

    @classmethod
    def from_json_dict(cls, d: dict) -> "HtmlSection":
        return cls(d["kind"], d["title"], tuple(_block_from_json(b) for b in d["blocks"]))


@dataclass(frozen=True)
class HtmlReport:
    """Everything report.html shows: the compile's report, bench figures once benched, result sections."""

    report: Report
    bench: BenchFigures | None = None
    sections: tuple[HtmlSection, ...] = ()

    def with_bench(self, bench: BenchFigures) -> "HtmlReport":
        return dataclasses.replace(self, bench=bench)

    def with_section(self, section: HtmlSection) -> "HtmlReport":
        """The page with ``section`` in place of an earlier section of its kind (else added at the end)."""
        kinds = [s.kind for s in self.sections]
        if section.kind in kinds:
            at = kinds.index(section.kind)
            return dataclasses.replace(self, sections=self.sections[:at] + (section,) + self.sections[at + 1:])
        return dataclasses.replace(self, sections=self.sections + (section,))

    def results_json(self) -> dict:
        """The results to carry over to the next page of the same compile (embedded in the page)."""
        return {"format": RESULTS_FORMAT, "report": report_fingerprint(self.report),
                "bench": self.bench.to_json_dict() if self.bench is not None else None,
                "sections": [s.to_json_dict() for s in self.sections]}


def report_fingerprint(report: Report) -> str:
    """SHA-256 of the report's JSON: results belong to the compile with this fingerprint."""
    return hashlib.sha256(json.dumps(report.to_json_dict(), sort_keys=True).encode()).hexdigest()


def read_results(page: str) -> dict | None:
    """The results JSON a page written by :func:`render_html` embeds (None: none, or not ours)."""
    m = re.search(rf'<script type="application/json" id="{RESULTS_ID}">(.*?)</script>', page, re.S)
    if m is None:
        return None
    try:
        data = json.loads(m.group(1))
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("format") == RESULTS_FORMAT else None


def carried_page(report: Report, previous: str | None) -> HtmlReport:
    """The page of ``report`` with the results of the ``previous`` page (its HTML text, None: no page)
    kept when they belong to the same compile (same report fingerprint); else the compile alone."""
    data = read_results(previous) if previous else None
    if data is None or data.get("report") != report_fingerprint(report):
        return HtmlReport(report)
    bench = BenchFigures.from_json_dict(data["bench"]) if data.get("bench") else None
    return HtmlReport(report, bench, tuple(HtmlSection.from_json_dict(s) for s in data.get("sections", ())))


# --- results of the api's commands -------------------------------------------------------------------------

def bench_figures(result) -> BenchFigures:
    """:class:`BenchFigures` of an ``api.bench.BenchResult``."""
    counts = tuple((int(lay["index"]), int(lay["count"])) for lay in result.layers)
    return BenchFigures(result.board, result.unit, counts, int(result.total), result.flash_bytes, result.text_bytes,
                        result.data_bytes, result.bss_bytes, result.sram_bytes, result.arena_bytes,
                        result.estimated_instructions)


REFERENCE_NAMES = {"onnxruntime": "onnxruntime float", "onnxruntime-qdq": "onnxruntime QDQ",
                   "tflite-micro": "TFLite Micro", "litert": "LiteRT (reference kernels)"}


def _pct(v: float | None, digits: int = 1) -> Cell:
    return Cell("-", None) if v is None else Cell(f"{100 * v:.{digits}f}%", v)


def _db(v: float) -> Cell:
    return Cell(f"{v:.1f} dB", v) if math.isfinite(v) else Cell("identical (no noise)", None)


def verify_section(result) -> HtmlSection:
    """The section of an ``api.verify.VerifyResult``: the verdict, the outputs against each reference
    (top-1 agreement, SQNR, cosine, bytes within 1 LSB), each reference's check and the labelled accuracy."""
    exact = "bit-exact" if result.bit_exact else f"MISMATCH: {result.mismatched_bytes:,} bytes differ"
    blocks: list[Block] = [
        Paragraph(f"{'passed' if result.passed else 'FAILED'}: the C on {result.target} vs the integer simulator: "
                  f"{exact}", "ok" if result.passed else "error"),
        Facts((("samples", str(result.samples)), ("target", result.target),
               ("C vs simulator", exact))),
    ]
    if result.outputs:
        blocks.append(Table(("output", "reference", "top-1 agreement", "SQNR", "cosine", "bytes within 1 LSB"),
                            tuple((o.name, REFERENCE_NAMES.get(o.reference, o.reference), _pct(o.top1_agreement),
                                   _db(o.sqnr_db), Cell(f"{o.cosine:.4f}", o.cosine), _pct(o.within_1lsb, 2))
                                  for o in result.outputs),
                            "the C outputs, dequantized, against each reference (the reference is the signal)"))
    if result.references:
        blocks.append(Table(("reference", "status", "bytes that differ", "detail"),
                            tuple((REFERENCE_NAMES.get(r.name, r.name), r.status, r.mismatched_bytes, r.detail or "")
                                  for r in result.references), "each reference's verdict"))
    ch = getattr(result, "chains", None)
    if ch is not None:
        total = ch.inputs * ch.patches
        dev = ch.device_chains
        blocks.append(Table(("chain", "patches (simulator)", "share", "patches (device)"),
                            tuple((name, n, _pct(n / total if total else 0.0), dev[k] if dev is not None else None)
                                  for k, (name, n) in enumerate(zip(ch.chain_names, ch.chains))),
                            f"the chain each patch took over the {ch.inputs} inputs ({ch.patches} patches each)"))
        if ch.device_mismatches is not None:
            ok = ch.device_mismatches == 0
            blocks.append(Paragraph("the device's chain of every patch equals the simulator's" if ok else
                                    f"{ch.device_mismatches} patches took another chain on the device than on the "
                                    "simulator", "ok" if ok else "error"))
        elif ch.note:
            blocks.append(Paragraph(f"chains on the device: {ch.note}"))
        quality = [(o.name, "C vs the 8-bit model", o) for o in ch.vs_8bit]
        quality += [(o.name, "the 8-bit model vs float", o) for o in ch.eight_bit_vs_float]
        if quality:
            blocks.append(Table(("output", "comparison", "top-1 agreement", "SQNR", "cosine"),
                                tuple((n, what, _pct(o.top1_agreement), _db(o.sqnr_db), Cell(f"{o.cosine:.4f}", o.cosine))
                                      for n, what, o in quality),
                                "QuantMCU's quality: the C (both chains) against the 8-bit model on the same plan"))
    if result.accuracy_int8 is not None:
        acc = [("int8 C", f"{100 * result.accuracy_int8:.2f}%")]
        if ch is not None and ch.accuracy_8bit is not None:
            acc.append(("the 8-bit model", f"{100 * ch.accuracy_8bit:.2f}%"))
        if result.accuracy_reference is not None:
            name = REFERENCE_NAMES.get(result.reference_for_accuracy, result.reference_for_accuracy)
            acc.append((name, f"{100 * result.accuracy_reference:.2f}%"))
        blocks.append(Facts(tuple((f"accuracy (labels), {k}", v) for k, v in acc)))
    blocks += [Paragraph(w, "warning") for w in result.warnings]
    return HtmlSection("verify", f"Verify on {result.target}", tuple(blocks))


# --- formatting --------------------------------------------------------------------------------------------

def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _attrs(**kv) -> str:
    """HTML attributes from keywords (``data_macs`` -> ``data-macs``); None values are left out."""
    return "".join(f' {k.replace("_", "-")}="{_e(v)}"' for k, v in kv.items() if v is not None)


def _nice_ticks(vmax: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``vmax`` (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if not vmax > 0:
        return [0.0, 1.0]
    raw = vmax / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(vmax / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _tick(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


# --- SVG plots ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Frame:
    """A plot's drawing area: pixel coordinates of the data ranges x [0, x_max], y [0, y_max]."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_max: float
    y_max: float

    def x(self, v: float) -> float:
        return self.left + (self.width - self.left - self.right) * v / (self.x_max or 1)

    def y(self, v: float) -> float:
        return self.height - self.bottom - (self.height - self.top - self.bottom) * v / (self.y_max or 1)


def _axes(f: _Frame, y_ticks: list[float], x_ticks: list[tuple[float, str]], x_label: str, y_label: str) -> list[str]:
    out = []
    x0, x1, y0, y1 = f.left, f.width - f.right, f.height - f.bottom, f.top
    for t in y_ticks:
        y = f.y(t)
        out.append(f'<line class="grid" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_tick(t))}</text>')
    for v, label in x_ticks:
        x = f.x(v)
        out.append(f'<line class="axis" x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 4}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{y0 + 16}" text-anchor="middle">{_e(label)}</text>')
    out.append(f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/>')
    out.append(f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>')
    out.append(f'<text class="label" x="{(x0 + x1) / 2:.1f}" y="{f.height - 6}" text-anchor="middle">{_e(x_label)}</text>')
    out.append(f'<text class="label" transform="translate(14 {(y0 + y1) / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{_e(y_label)}</text>')
    return out


def _legend(entries: list[tuple[str, str, str]], x: float, y: float) -> list[str]:
    """Legend entries (label, colour, shape "line" | "dash" | "box" | "band") from (x, y) down."""
    width = 14 + 6.2 * max((len(e[0]) for e in entries), default=0)
    out = [f'<g class="legend"><rect class="legend-box" x="{x - 6:.1f}" y="{y - 12:.1f}" width="{width + 22:.0f}" '
           f'height="{18 * len(entries) + 6}"/>']
    for k, (label, color, shape) in enumerate(entries):
        yy = y + 18 * k
        if shape in ("line", "dash"):
            dash = ' stroke-dasharray="5 3"' if shape == "dash" else ""
            out.append(f'<line x1="{x:.1f}" y1="{yy - 4:.1f}" x2="{x + 16:.1f}" y2="{yy - 4:.1f}" stroke="{color}" '
                       f'stroke-width="2"{dash}/>')
        else:
            opacity = ' fill-opacity="0.15"' if shape == "band" else ""
            out.append(f'<rect x="{x:.1f}" y="{yy - 10:.1f}" width="16" height="10" fill="{color}"{opacity}/>')
        out.append(f'<text x="{x + 22:.1f}" y="{yy:.1f}">{_e(label)}</text>')
    out.append("</g>")
    return out


def _svg(plot_id: str, title: str, width: int, height: int, body: list[str]) -> str:
    return (f'<svg class="plot" id="{plot_id}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-labelledby="{plot_id}-title">'
            f'<title id="{plot_id}-title">{_e(title)}</title>' + "".join(body) + "</svg>")


def _step_path(f: _Frame, values: tuple[int, ...], scale: float) -> str:
    """A step line: value i holds over [i, i+1) of the schedule."""
    pts = []
    for i, v in enumerate(values):
        y = f.y(v / scale)
        pts.append(f"{f.x(i):.1f},{y:.1f}")
        pts.append(f"{f.x(i + 1):.1f},{y:.1f}")
    return "M" + " L".join(pts) if pts else ""


def memory_svg(report: Report) -> str:
    """The memory profile: activation bytes live at each step of the schedule, layer by layer and (when a
    patch plan is taken) patched, with the arena the code runs with and TFLite Micro's when measured."""
    prof = report.memory_profile
    series = [("layer by layer", prof.layerwise, COLORS[0])]
    pp = report.patch_plan
    if prof.patched is not None and pp is not None:
        series.append((f"patched {pp.grid}x{pp.grid}, first {pp.stage_layers} layers", prof.patched, COLORS[1]))
    tflm = report.tflm.arena_bytes if report.tflm is not None and report.tflm.arena_bytes else None
    lines = [(f"arena the code runs with: {_kb(report.arena_bytes)}", report.arena_bytes, "#444")]
    if tflm:
        lines.append((f"TFLite Micro's arena: {_kb(tflm)}", tflm, "#999"))
    legend: list[tuple[str, str, str]] = []
    if len(series) > 1:
        legend.append(("per-patch stage (patched schedule)", COLORS[1], "band"))
    legend += [(f"{name} (peak {_kb(max(values, default=0))})", color, "line") for name, values, color in series]
    legend += [(label, color, "dash") for label, _, color in lines]
    steps = max(len(v) for _, v, _ in series) or 1
    peak = max([max(v, default=0) for _, v, _ in series] + [report.arena_bytes, tflm or 0])
    kb = 1024.0
    ticks = _nice_ticks(peak / kb)
    f = _Frame(760, 260 + 18 * len(legend), 64, 16, 18 * len(legend) + 18, 44, steps, ticks[-1])
    every = max(1, math.ceil(steps / 25))
    body = _axes(f, ticks, [(i + 0.5, str(i)) for i in range(0, steps, every)], "schedule step (one per graph node)",
                 "live activations (KB)")
    if len(series) > 1:
        x0, x1 = f.x(0), f.x(pp.stage_layers + 1)
        body.append(f'<rect class="stage" x="{x0:.1f}" y="{f.top}" width="{x1 - x0:.1f}" '
                    f'height="{f.height - f.top - f.bottom}" fill="{COLORS[1]}" fill-opacity="0.12"/>')
    for name, values, color in series:
        body.append(f'<path class="series" data-series="{_e(name)}" d="{_step_path(f, values, kb)}" fill="none" '
                    f'stroke="{color}" stroke-width="2"/>')
        for i, v in enumerate(values):  # a hover target per step, with its figure
            body.append(f'<rect class="hover" x="{f.x(i):.1f}" y="{f.y(v / kb):.1f}" width="{f.x(1) - f.x(0):.1f}" '
                        f'height="{f.height - f.bottom - f.y(v / kb):.1f}"><title>{_e(name)}, step {i}: '
                        f'{v:,} B</title></rect>')
    for label, value, color in lines:
        y = f.y(value / kb)
        body.append(f'<line class="limit" x1="{f.left}" y1="{y:.1f}" x2="{f.width - f.right}" y2="{y:.1f}" '
                    f'stroke="{color}" stroke-dasharray="5 3"/>')
    body += _legend(legend, f.left + 8, 20)
    return _svg("plot-memory", "Memory profile over the schedule", f.width, f.height, body)


def patch_grid_svg(q: QuantmcuReport) -> str:
    """The patch grid of QuantMCU's plan, each patch shaded by the share of calibration samples on which the
    check sent it to the 8-bit chain (white: always the low-bit chain), with the share written in it."""
    n = q.plan.grid
    cell = max(28, min(64, 480 // max(n, 1)))
    left, top = 16, 30
    size = n * cell
    body = [f'<text class="label" x="{left}" y="18">share of calibration samples on the 8-bit chain, per patch '
            '(row-major; white: the low-bit chain)</text>']
    for k, share in enumerate(q.patch_outlier_share):
        r, c = divmod(k, n)
        x, y = left + c * cell, top + r * cell
        body.append(f'<rect class="patch" data-patch="{k}" data-share="{share:.6g}" x="{x}" y="{y}" width="{cell}" '
                    f'height="{cell}" fill="{COLORS[5]}" fill-opacity="{0.08 + 0.85 * share:.3f}" stroke="#999">'
                    f'<title>patch {k} (row {r}, column {c}): {100 * share:.1f}% of the calibration samples on the '
                    ' 8-bit chain</title></rect>')
        body.append(f'<text class="tick" x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle">'
                    f'{100 * share:.0f}%</text>')
    return _svg("plot-quantmcu-patches", "Outlier patches on the calibration data", left + size + 16 + 420,
                top + size + 12, body)


def bits_chart(q: QuantmcuReport) -> BarChart:
    """Bits per feature map of the low-bit chain (the checked map stays 8)."""
    role = {"input": " (input)", "output": " (output)"}
    labels = tuple(short_tensor_name(m.name, 24) + (" (checked)" if m.checked else "") + role.get(m.role, "")
                   for m in q.feature_maps)
    series = [("low-bit chain", tuple(float(m.bits) for m in q.feature_maps))]
    if q.entropy_only_bits:
        eo = dict(q.entropy_only_bits)
        series.append(("entropy score alone", tuple(float(eo.get(m.name, 8)) for m in q.feature_maps)))
    return BarChart("bits per feature map", labels, tuple(series), "bits", "feature map (stage order)")


def quantmcu_html(q: QuantmcuReport) -> str:
    """The QuantMCU section: its summary lines, bits per feature map, the patches' chains on the calibration
    data, the feature maps and the search's steps (the trade-off curve the guard walked)."""
    facts = Facts(tuple((f"{k}", v) for k, v in (
        ("plan", f"{q.plan.grid}x{q.plan.grid} patches over {q.plan.stage_layers} layers (split at "
                 f"'{q.plan.split_tensor}')" + (f", outlier patches as {q.plan.sub_patches}x{q.plan.sub_patches} "
                                                 "sub-patches" if q.plan.sub_patches and q.plan.sub_patches > 1 else "")),
        ("check", f"'{q.checked_map}': |q - zp| > {q.threshold}"),
        ("outlier patches", f"{100 * q.outlier_patch_share:.1f}% of the calibration patches (8-bit chain)"),
        ("stage BitOPs", f"{q.bitops_8bit:,} (8-bit patching, same plan) -> {q.bitops:,}: {q.saving:.2f}x fewer"),
        ("stage BitOPs, 8-bit at its own plan", f"{q.bitops_8bit_own_plan:,}: {q.saving_own_plan:.2f}x"),
        ("model BitOPs", f"{q.bitops_model_8bit:,} -> {q.bitops_model:,}: {q.saving_model:.2f}x fewer"),
        ("low-bit chain flash", f"{q.flash_bytes:,} B (its own weights and biases)"),
        ("search", f"{q.search_seconds:.2f} s, {len(q.search_steps)} steps"),
    )))
    lines = quantmcu_lines(q)
    maps = Table(("feature map", "role", "bits", "scales", "zero point", "checked"),
                 tuple((m.name, m.role, m.bits, ", ".join(f"{v:.4g}" for v in m.scales) if len(m.scales) <= 4 else
                        Cell(f"{len(m.scales)} (per channel, {min(m.scales):.4g} .. {max(m.scales):.4g})", len(m.scales)),
                        m.zero_point, m.checked) for m in q.feature_maps), "the low-bit chain's feature maps")
    steps = Table(("#", "map", "bits", "score", "stage BitOPs / 8-bit", "guard metric", "kept"),
                  tuple((k, s.map, s.bits, s.score, s.bitops_ratio, s.quality, s.accepted)
                        for k, s in enumerate(q.search_steps)),
                  f"VDQS, step by step (guard {q.guard}" + (f", floor {q.floor:g}" if q.floor is not None else "") + ")")
    # the summary's quality and search lines (its first lines are the facts above)
    parts = [f'<p class="note">{_e(line.strip())}</p>' for line in lines[3:]]
    return ('<section id="quantmcu"><h2>QuantMCU</h2>' + _block_html(facts, "quantmcu", 0) + "".join(parts)
            + f"<figure>{bar_chart_svg(bits_chart(q), 'plot-quantmcu-bits')}<figcaption>Bits per feature map of the "
              "low-bit chain (the patches without outliers); outlier patches run every map at 8 bits.</figcaption>"
              "</figure>"
            + f"<figure>{patch_grid_svg(q)}<figcaption>Which patches took which chain on the calibration data: the "
              "darker, the more often the on-device check found an outlier and ran the 8-bit chain.</figcaption>"
              "</figure>"
            + _block_html(maps, "quantmcu", 1) + _block_html(steps, "quantmcu", 2) + "</section>")


@dataclass(frozen=True)
class FlashPart:
    """One part of the flash a model takes: its bytes and whether the figure is an estimate."""

    name: str
    bytes: int
    estimate: bool
    color: str


def flash_parts(report: Report, bench: BenchFigures | None) -> list[tuple[str, list[FlashPart]]]:
    """The flash breakdowns the page knows: the compile's (weights exact, code estimated) and, once benched,
    the linked firmware's (ELF text and data; the weights are the same arrays, the rest of text is code and
    other read-only data, the whole firmware's: startup, the test inputs compiled in)."""
    out = [("compile (estimate)", [FlashPart("weights and parameter arrays", report.weights_bytes, False, COLORS[0]),
                                   FlashPart("code (estimate)", report.code_bytes_estimate, True, COLORS[1])])]
    if bench is not None:
        code = max(bench.text_bytes - report.weights_bytes, 0)
        out.append((f"firmware ELF on {bench.board}",
                    [FlashPart("weights and parameter arrays", min(report.weights_bytes, bench.text_bytes), False,
                               COLORS[0]),
                     FlashPart("code and other read-only data (ELF text - weights)", code, False, COLORS[2]),
                     FlashPart("initialised data (ELF .data)", bench.data_bytes, False, COLORS[3])]))
    return out


def flash_svg(report: Report, bench: BenchFigures | None) -> str:
    """The flash breakdown as horizontal stacked bars, one per breakdown known (see :func:`flash_parts`)."""
    bars = flash_parts(report, bench)
    total = max(sum(p.bytes for p in parts) for _, parts in bars) or 1
    ticks = _nice_ticks(total / 1024)
    height = 84 + 46 * len(bars) + 20 * 4
    left = 170
    f = _Frame(760, height, left, 64, 12, 40 + 20 * 4, ticks[-1], 1)
    body = []
    y0, y1 = f.top, f.height - f.bottom
    for t in ticks:  # vertical grid and the x axis (KB)
        x = f.x(t)
        body.append(f'<line class="grid" x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}"/>')
        body.append(f'<text class="tick" x="{x:.1f}" y="{y1 + 16}" text-anchor="middle">{_e(_tick(t))}</text>')
    body.append(f'<line class="axis" x1="{f.left}" y1="{y1}" x2="{f.width - f.right}" y2="{y1}"/>')
    body.append(f'<text class="label" x="{(f.left + f.width - f.right) / 2:.1f}" y="{y1 + 34}" '
                f'text-anchor="middle">flash (KB)</text>')
    seen: dict[str, FlashPart] = {}
    for k, (name, parts) in enumerate(bars):
        y = y0 + 12 + 46 * k
        body.append(f'<text class="label" x="{left - 8}" y="{y + 19}" text-anchor="end">{_e(name)}</text>')
        x = 0.0
        for p in parts:
            w = f.x((x + p.bytes) / 1024) - f.x(x / 1024)
            hatch = ' stroke-dasharray="4 2" stroke="#333"' if p.estimate else ""
            body.append(f'<rect class="part" x="{f.x(x / 1024):.1f}" y="{y}" width="{w:.1f}" height="28" '
                        f'fill="{p.color}"{hatch}><title>{_e(p.name)}: {p.bytes:,} B</title></rect>')
            x += p.bytes
            seen.setdefault(p.name, p)
        body.append(f'<text class="tick" x="{f.x(x / 1024) + 4:.1f}" y="{y + 19}">{_e(_kb(int(x)))}</text>')
    legend = [(p.name + (" - an estimate until bench links the firmware" if p.estimate else ""), p.color, "box")
              for p in seen.values()]
    body += _legend(legend, left, y1 + 52)
    svg_h = y1 + 52 + 18 * len(legend)
    return _svg("plot-flash", "Flash breakdown", f.width, svg_h, body)


def bar_chart_svg(chart: BarChart, plot_id: str) -> str:
    """Grouped vertical bars (``chart``): one group per label, one colour per series, with a legend."""
    n = max(len(chart.labels), 1)
    vmax = max([max(vs, default=0) for _, vs in chart.series] + [0])
    vmin = min([min(vs, default=0) for _, vs in chart.series] + [0])
    ticks = _nice_ticks(vmax - min(vmin, 0))
    f = _Frame(760, 260 + 18 * len(chart.series), 64, 16, 18 * len(chart.series) + 18, 44, n, ticks[-1])
    every = max(1, math.ceil(n / 30))
    body = _axes(f, ticks, [(i + 0.5, chart.labels[i]) for i in range(0, len(chart.labels), every)], chart.x_label,
                 chart.y_label)
    group = f.x(1) - f.x(0)
    bar = group * 0.8 / max(len(chart.series), 1)
    for s, (name, values) in enumerate(chart.series):
        color = COLORS[s % len(COLORS)]
        for i, v in enumerate(values):
            h = max(f.y(0) - f.y(max(v, 0.0)), 0.0)
            body.append(f'<rect class="bar" x="{f.x(i) + group * 0.1 + s * bar:.1f}" y="{f.y(max(v, 0.0)):.1f}" '
                        f'width="{max(bar, 0.5):.1f}" height="{h:.1f}" fill="{color}"><title>{_e(chart.labels[i])}, '
                        f'{_e(name)}: {v:.4g}</title></rect>')
    body += _legend([(name, COLORS[s % len(COLORS)], "box") for s, (name, _) in enumerate(chart.series)],
                    f.left + 8, 20)
    return _svg(plot_id, chart.title, f.width, f.height, body)


def layer_cost_chart(report: Report, bench: BenchFigures | None) -> BarChart:
    """Each layer's share of the model's MACs and, once benched, of its instructions or cycles."""
    labels = tuple(str(lay.index) for lay in report.layers)
    series = [("MACs (% of the model's)", tuple(100.0 * lay.macs / report.macs if report.macs else 0.0
                                                for lay in report.layers))]
    if bench is not None:
        series.append((f"{bench.unit} on {bench.board} (% of the total)",
                       tuple(100.0 * (bench.count_of(lay.index) or 0) / bench.total if bench.total else 0.0
                             for lay in report.layers)))
    return BarChart("Cost per layer", labels, tuple(series), "% of the model", "layer")


# --- page parts --------------------------------------------------------------------------------------------

def _fact(name: str, text: str, key: str | None = None, value: object = None) -> str:
    attrs = _attrs(data_key=key, data_value=value) if key is not None else ""
    return f"<dt>{_e(name)}</dt><dd{attrs}>{_e(text)}</dd>"


def _patch_text(report: Report) -> str:
    pp = report.patch_plan
    if pp is None:
        return f"layer by layer; input {report.input_in_sram}"
    return (f"first {pp.stage_layers} layers in {pp.grid}x{pp.grid} patches (split after '{pp.split_tensor}'), "
            f"+{100 * pp.overhead:.1f}% MACs recomputed ({pp.overhead_macs:,}); input {report.input_in_sram}")


def _quant_text(report: Report) -> str:
    q = report.quantization
    parts = [f"{len(q.from_model)} from the model", f"{len(q.calibrated)} calibrated", f"{len(q.fixed)} fixed by their op"]
    text = f"{report.source_format}: " + ", ".join(parts) + " (activation tensors)"
    if report.calibration is not None:
        c = report.calibration
        bc = f"; bias correction on {c.corrected_layers} layers" if c.bias_correction else ""
        text += f"; calibration {c.method}{bc}"
    return text


def summary_html(report: Report, bench: BenchFigures | None) -> str:
    """The model summary as a definition list; every figure also in ``data-key`` / ``data-value``."""
    sram_pct = 100.0 * report.peak_sram_bytes / report.board_sram_bytes if report.board_sram_bytes else 0.0
    flash_pct = 100.0 * report.flash_bytes / report.board_flash_bytes if report.board_flash_bytes else 0.0
    rows = [
        _fact("model", report.model, "model", report.model),
        _fact("board", f"{report.board} ({_kb(report.board_sram_bytes)} SRAM, {_kb(report.board_flash_bytes)} flash)",
              "board", report.board),
        _fact("compiler", f"mcucompile {report.compiler_version}", "compiler_version", report.compiler_version),
        _fact("kernels", f"{report.kernels}: {100 * report.fast_mac_share:.1f}% of MACs on fast kernels", "kernels",
              report.kernels),
        _fact("quantization", _quant_text(report), "source_format", report.source_format),
        _fact("rounding", report.rounding + (" (TFLite's double rounding)" if report.rounding == "double"
                                             else " (one rounding, as ONNX QDQ semantics)"), "rounding", report.rounding),
        _fact("MACs", f"{report.macs:,}", "macs", report.macs),
        _fact("peak SRAM", f"{report.peak_sram_bytes:,} B ({_kb(report.peak_sram_bytes)}, {sram_pct:.1f}% of the board)",
              "peak_sram_bytes", report.peak_sram_bytes),
        _fact("layer by layer", f"{report.peak_sram_layerwise_bytes:,} B peak SRAM", "peak_sram_layerwise_bytes",
              report.peak_sram_layerwise_bytes),
        _fact("arena", f"{report.arena_bytes:,} B (activations {report.activation_bytes:,} B)", "arena_bytes",
              report.arena_bytes),
        _fact("flash", f"{report.flash_bytes:,} B ({_kb(report.flash_bytes)}, {flash_pct:.1f}% of the board): weights "
                       f"{report.weights_bytes:,} B + code {report.code_bytes_estimate:,} B (estimate)", "flash_bytes",
              report.flash_bytes),
        _fact("weights", f"{report.weights_bytes:,} B", "weights_bytes", report.weights_bytes),
        _fact("code (estimate)", f"{report.code_bytes_estimate:,} B", "code_bytes_estimate", report.code_bytes_estimate),
        _fact("patch plan", _patch_text(report), "stage_layers", report.stage_layers),
    ]
    choice = plan_choice_line(report.plan_choice)
    if choice:
        rows.append(_fact("plan choice", choice, "optimize", report.optimize))
    rows.append(_fact("estimated instructions", f"{report.estimated_instructions:,} (cost model, "
                                                f"{report.plan_choice.cost_model})", "estimated_instructions",
                      report.estimated_instructions))
    if report.tflm is not None:
        text = f"{report.tflm.arena_bytes:,} B" if report.tflm.arena_bytes else f"not measured: {report.tflm.note}"
        rows.append(_fact("TFLite Micro arena", text, "tflm_arena_bytes", report.tflm.arena_bytes))
    if bench is not None:
        rows.append(_fact(f"{bench.unit} (bench)", f"{bench.total:,} on {bench.board}", "bench_total", bench.total))
        rows.append(_fact("flash (ELF)", f"{bench.flash_bytes:,} B (text {bench.text_bytes:,} + data "
                                         f"{bench.data_bytes:,})", "bench_flash_bytes", bench.flash_bytes))
        rows.append(_fact("SRAM (ELF)", f"{bench.sram_bytes:,} B (data {bench.data_bytes:,} + bss {bench.bss_bytes:,})",
                          "bench_sram_bytes", bench.sram_bytes))
    ios = "".join(f"<tr><td>{'input' if t in report.inputs else 'output'}</td><td>{_e(t.name)}</td>"
                  f"<td>{_e(_shape(t.shape))}</td><td class='num'>{t.scale:.6g}</td><td class='num'>{t.zero_point}</td>"
                  f"<td>{_e(', '.join(map(str, t.layout_perm)) or '-')}</td></tr>"
                  for t in report.inputs + report.outputs)
    return (f'<dl class="facts" id="summary-facts">{"".join(rows)}</dl>'
            '<table class="io"><caption>inputs and outputs (int8 parameters, as the application sees them)</caption>'
            '<thead><tr><th>kind</th><th>name</th><th>shape</th><th>scale</th><th>zero point</th>'
            f'<th>layout permutation</th></tr></thead><tbody>{ios}</tbody></table>')


def _td(text: str, sort: object, cls: str = "", **data) -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}{_attrs(data_sort=sort, **data)}>{text}</td>"


def layers_html(report: Report, bench: BenchFigures | None) -> str:
    """The per-layer table: one ``<tr data-index ...>`` per layer, its figures in ``data-*`` attributes."""
    unit = bench.unit if bench is not None else None
    head = ["#", "layer", "op", "inputs", "output", "MACs", "kernel", "bits (out / weights)", "arena offset (out)",
            "input offsets", "param bytes"]
    if bench is not None:
        head += [f"{unit} ({bench.board})", "share", f"{unit} / MAC"]
    stage = report.stage_layers
    rows = []
    for lay in report.layers:
        count = bench.count_of(lay.index) if bench is not None else None
        reason = f'<div class="why">{_e(lay.kernel_reason)}</div>' if lay.kernel_reason else ""
        mark = ' <span class="tag">per patch</span>' if lay.index < stage else ""
        cells = [
            _td(str(lay.index), lay.index, "num"),
            _td(_e(lay.name) + mark, lay.name),
            _td(_e(lay.op) + (f'<div class="why">{_e(lay.source)}</div>' if lay.source and lay.source != lay.op else ""),
                lay.op),
            _td(_e(", ".join(_shape(s) for s in lay.input_shapes)), ", ".join(_shape(s) for s in lay.input_shapes)),
            _td(_e(_shape(lay.output_shape)), _shape(lay.output_shape)),
            _td(f"{lay.macs:,}", lay.macs, "num"),
            _td(_e(lay.kernel or "-") + reason, lay.kernel or "", "fast" if lay.fast_kernel else "portable"),
            _td(f"{lay.bitwidth} / {lay.weight_bitwidth}", lay.bitwidth, "num"),
            _td(f"{lay.arena_offset:,}" if lay.arena_offset >= 0 else "-", lay.arena_offset, "num"),
            _td(_e(", ".join(f"{o:,}" if o >= 0 else "-" for o in lay.input_offsets)),
                lay.input_offsets[0] if lay.input_offsets else -1, "num"),
            _td(f"{lay.param_bytes:,}", lay.param_bytes, "num"),
        ]
        if bench is not None:
            share = count / bench.total if count is not None and bench.total else None
            per_mac = f"{count / lay.macs:.1f}" if count is not None and lay.macs else "-"
            cells += [_td(f"{count:,}" if count is not None else "-", count if count is not None else -1, "num"),
                      _td(f"{100 * share:.1f}%" if share is not None else "-", share or 0, "num"),
                      _td(per_mac, count / lay.macs if count is not None and lay.macs else -1, "num")]
        attrs = _attrs(data_index=lay.index, data_name=lay.name, data_op=lay.op, data_macs=lay.macs,
                       data_arena_offset=lay.arena_offset, data_input_offsets=",".join(map(str, lay.input_offsets)),
                       data_kernel=lay.kernel or "", data_fast_kernel=str(lay.fast_kernel).lower(),
                       data_bitwidth=lay.bitwidth, data_weight_bitwidth=lay.weight_bitwidth,
                       data_output_shape=_shape(lay.output_shape), data_param_bytes=lay.param_bytes, data_count=count)
        rows.append(f'<tr id="layer-{lay.index}"{attrs}{" class=stage" if lay.index < stage else ""}>'
                    + "".join(cells) + "</tr>")
    params = sum(lay.param_bytes for lay in report.layers)
    foot = ([f'<td colspan="5">total ({len(report.layers)} layers)</td>',
             f'<td class="num" id="total-macs" data-value="{report.macs}">{report.macs:,}</td>',
             f'<td>{100 * report.fast_mac_share:.1f}% of MACs on fast kernels</td><td></td>',
             f'<td class="num" id="total-arena" data-value="{report.arena_bytes}">arena {report.arena_bytes:,}</td>'
             f'<td></td><td class="num" id="total-param-bytes" data-value="{params}">{params:,}</td>'])
    if bench is not None:
        per = f"{bench.total / report.macs:.1f}" if report.macs else "-"
        foot.append(f'<td class="num" id="total-count" data-value="{bench.total}">{bench.total:,}</td>'
                    f'<td class="num">100.0%</td><td class="num">{per}</td>')
    ths = "".join(f'<th scope="col" title="click to sort">{_e(h)}</th>' for h in head)
    return (f'<table class="layers sortable" id="layers-table"><thead><tr>{ths}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody><tfoot><tr>{"".join(foot)}</tr></tfoot></table>')


def flash_table_html(report: Report, bench: BenchFigures | None) -> str:
    rows = []
    for name, parts in flash_parts(report, bench):
        for p in parts:
            rows.append(f"<tr><td>{_e(name)}</td><td>{_e(p.name)}</td><td class='num'>{p.bytes:,}</td>"
                        f"<td>{'estimate' if p.estimate else 'exact' if name.startswith('compile') else 'measured'}</td></tr>")
    return ("<table class='flash'><thead><tr><th>breakdown</th><th>part</th><th>bytes</th><th>figure</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def bench_html(report: Report, bench: BenchFigures) -> str:
    how = ("instructions under QEMU -icount (not cycles)" if bench.unit == "instructions"
           else "DWT cycle counter on the board")
    in_layers = sum(c for _, c in bench.counts)
    items = [("board", f"{bench.board}: {how}"),
             (f"total {bench.unit}", f"{bench.total:,} for one inference: {in_layers:,} in the layers, "
                                     f"{bench.total - in_layers:,} around them (the model call's own work)")]
    if bench.estimated_instructions and bench.unit == "instructions":
        items.append(("cost model", f"{bench.estimated_instructions:,} estimated "
                                    f"({100.0 * bench.estimated_instructions / max(bench.total, 1):.1f}% of the measured; "
                                    "the estimate the plan was chosen with)"))
    items += [("flash (ELF)", f"{bench.flash_bytes:,} B (text {bench.text_bytes:,} + data {bench.data_bytes:,})"),
              ("SRAM (ELF)", f"{bench.sram_bytes:,} B (data {bench.data_bytes:,} + bss {bench.bss_bytes:,}; model "
                             f"arena {bench.arena_bytes:,})")]
    return (_block_html(Facts(tuple(items)), "bench", 0)
            + "<p class='note'>The per-layer figures are in the layer table's last columns and the cost plot.</p>")


def _block_html(block: Block, kind: str, k: int) -> str:
    if isinstance(block, Paragraph):
        return f'<p class="{_e(block.tone)}">{_e(block.text)}</p>'
    if isinstance(block, Facts):
        return '<dl class="facts">' + "".join(_fact(n, v) for n, v in block.items) + "</dl>"
    if isinstance(block, BarChart):
        return f"<figure>{bar_chart_svg(block, f'plot-{kind}-{k}')}<figcaption>{_e(block.title)}</figcaption></figure>"
    cells = [[_cell(c) for c in r] for r in block.rows]
    numeric = [all(isinstance(r[i].value, (int, float)) or r[i].value is None for r in cells) and
               any(isinstance(r[i].value, (int, float)) for r in cells) for i in range(len(block.columns))]
    ths = "".join(f'<th scope="col" title="click to sort">{_e(h)}</th>' for h in block.columns)
    body = "".join("<tr>" + "".join(_td(_e(c.text), c.value, "num" if numeric[i] else "")
                                    for i, c in enumerate(r)) + "</tr>" for r in cells)
    caption = f"<caption>{_e(block.caption)}</caption>" if block.caption else ""
    return (f'<table class="sortable" id="table-{kind}-{k}">{caption}<thead><tr>{ths}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def section_html(section: HtmlSection) -> str:
    return (f'<section id="section-{section.kind}" data-kind="{section.kind}"><h2>{_e(section.title)}</h2>'
            + "".join(_block_html(b, section.kind, k) for k, b in enumerate(section.blocks)) + "</section>")


def _details_html(report: Report) -> str:
    parts = []
    if report.calibration is not None and report.calibration.tensors:
        rows = "".join(f"<tr><td>{_e(t.name)}</td><td>{_e(t.rule)}</td><td class='num'>{t.range[0]:.6g}</td>"
                       f"<td class='num'>{t.range[1]:.6g}</td><td class='num'>{t.data_range[0]:.6g}</td>"
                       f"<td class='num'>{t.data_range[1]:.6g}</td></tr>" for t in report.calibration.tensors)
        parts.append(f"<details><summary>calibrated ranges ({len(report.calibration.tensors)} tensors, "
                     f"{_e(report.calibration.method)})</summary><table class='sortable'><thead><tr><th>tensor</th>"
                     "<th>rule</th><th>range min</th><th>range max</th><th>data min</th><th>data max</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table></details>")
    q = report.quantization
    lists = [(n, names) for n, names in (("from the model", q.from_model), ("calibrated", q.calibrated),
                                        ("fixed by their op", q.fixed)) if names]
    if lists:
        items = "".join(f"<dt>{_e(n)} ({len(names)})</dt><dd>{_e(', '.join(names))}</dd>" for n, names in lists)
        parts.append(f"<details><summary>quantization sources by tensor</summary><dl class='facts'>{items}</dl></details>")
    if report.patch_candidates:
        rows = "".join(f"<tr><td class='num'>{c.stage_len}</td><td class='num'>{c.grid}</td><td class='num'>"
                       f"{c.peak:,}</td><td class='num'>{100 * c.overhead:.1f}%</td><td class='num'>"
                       f"{c.instructions:,}</td></tr>" for c in report.patch_candidates)
        parts.append(f"<details><summary>patch plans tried ({len(report.patch_candidates)})</summary>"
                     "<table class='sortable'><thead><tr><th>stage layers</th><th>grid</th><th>peak SRAM (B)</th>"
                     f"<th>MAC overhead</th><th>estimated instructions</th></tr></thead><tbody>{rows}</tbody></table>"
                     "</details>")
    return "".join(parts)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0 auto;max-width:1200px;
padding:0 16px 32px}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
nav a{margin-right:12px}.sub{color:#666;margin:0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dl.facts dt{color:#555}
dl.facts dd{margin:0}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 6px;
vertical-align:top;text-align:left}th{background:#f4f4f4;cursor:pointer}td.num{text-align:right;
font-variant-numeric:tabular-nums}tfoot td{font-weight:600;background:#fafafa}caption{text-align:left;color:#555;
padding:2px 0}
tr.stage td:first-child{border-left:3px solid #ff7f0e}.tag{font-size:11px;color:#b35900;background:#fff1e0;
padding:0 4px;border-radius:3px}.why{font-size:11px;color:#777}td.fast{color:#1a5e1a}
.table-wrap{overflow-x:auto}
svg.plot{max-width:100%;height:auto;font-size:11px;background:#fff}svg .grid{stroke:#eee}svg .axis{stroke:#555}
svg .tick{fill:#555}svg .label{fill:#222;font-size:12px}svg .legend-box{fill:#fff;fill-opacity:.9;stroke:#ccc}
svg .hover{fill:transparent}svg .hover:hover{fill:#000;fill-opacity:.06}
figure{margin:8px 0}figcaption{color:#555;font-size:13px}
p.warning{background:#fff6e0;border-left:3px solid #e0a000;padding:4px 8px}p.error{background:#fde8e8;
border-left:3px solid #c00;padding:4px 8px}p.ok{background:#e8f6e8;border-left:3px solid #2a2;padding:4px 8px}
p.note{color:#555}details{margin:6px 0}
@media print{nav{display:none}body{max-width:none;font-size:11px}section{break-inside:avoid-page}
table{font-size:10px}th{cursor:auto}}
"""

# Sort a table by a header click (optional: the page reads fine without it).
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], col = th.cellIndex, asc = th.getAttribute("data-order") !== "asc";
      th.setAttribute("data-order", asc ? "asc" : "desc");
      var key = function (row) {
        var cell = row.cells[col], v = cell.getAttribute("data-sort");
        return v === null ? cell.textContent : v;
      };
      Array.prototype.slice.call(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var c = isNaN(nx) || isNaN(ny) ? String(x).localeCompare(String(y)) : nx - ny;
        return asc ? c : -c;
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

# No request leaves the page: everything is inline (a browser refuses any fetch, and says so).
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def render_html(page: HtmlReport) -> str:
    """The whole self-contained report.html of ``page`` (deterministic: the same page, the same bytes)."""
    r, bench = page.report, page.bench
    name = r.model.replace("\\", "/").split("/")[-1]
    nav = [("summary", "summary"), ("memory", "memory"), ("flash", "flash"), ("layers", "layers")]
    if r.quantmcu is not None:
        nav.append(("quantmcu", "QuantMCU"))
    if bench is not None:
        nav.append(("bench", "bench"))
    nav += [(f"section-{s.kind}", s.kind) for s in page.sections]
    notes = "".join(f'<p class="warning">{_e(n)}</p>' for n in r.notes)
    sections = [
        f'<section id="summary"><h2>Summary</h2>{notes}{summary_html(r, bench)}{_details_html(r)}</section>',
        '<section id="memory"><h2>Memory over the schedule</h2><figure>' + memory_svg(r) +
        "<figcaption>Activation bytes alive at each step of the schedule (each graph node a step). The arena line is "
        "what the generated code reserves: buffers placed by the planner, kernels' scratch and alignment included."
        "</figcaption></figure></section>",
        '<section id="flash"><h2>Flash</h2><figure>' + flash_svg(r, bench) +
        "<figcaption>Weights are exact (the constant arrays); code is mcucompile's estimate until <code>bench</code> "
        "links the firmware and reads its ELF" + (": the ELF is the whole firmware (startup, printing, the test "
                                                  "inputs compiled in), not the model alone" if bench else "") +
        ".</figcaption></figure>" + flash_table_html(r, bench) + "</section>",
        '<section id="layers"><h2>Layers</h2><div class="table-wrap">' + layers_html(r, bench) + "</div><figure>"
        + bar_chart_svg(layer_cost_chart(r, bench), "plot-layers") +
        "<figcaption>Each layer's share of the MACs" + (f" and of the {bench.unit} measured" if bench else "") +
        "</figcaption></figure></section>",
    ]
    if r.quantmcu is not None:
        sections.append(quantmcu_html(r.quantmcu))
    if bench is not None:
        sections.append(f'<section id="bench"><h2>Bench on {_e(bench.board)}</h2>{bench_html(r, bench)}</section>')
    sections += [section_html(s) for s in page.sections]
    results = json.dumps(page.results_json(), sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mcucompile report: {_e(name)} on {_e(r.board)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{_e(name)} on {_e(r.board)}</h1><p class=\"sub\">mcucompile {_e(r.compiler_version)} · "
        f"{r.macs:,} MACs · peak SRAM {_kb(r.peak_sram_bytes)} · flash {_kb(r.flash_bytes)}</p></header>"
        "<nav>" + "".join(f'<a href="#{i}">{_e(t)}</a>' for i, t in nav) + "</nav>\n"
        + "\n".join(sections) +
        f'\n<script type="application/json" id="{RESULTS_ID}">{results}</script>'
        f"\n<script>{SORT_JS}</script>\n</body></html>\n"
    )
