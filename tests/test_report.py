"""The typed report: report.json is exactly what it was when the report was a dict (goldens recorded from
commit 54dd272, before the typed report), the report holds typed values only, the summary and the plot
read attributes, and the quantization sources (model / calibrated / fixed) are right for each format.

Re-record the goldens (only when a change is meant to change report.json, and say so in the commit):
    .venv/bin/python tests/test_report.py --record
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, compile_model, write_library
from mcucompile.api.options import PatchOptions
from mcucompile.report import QuantizationReport, Report, build_report, format_summary
from mcucompile.report.build import activation_tensors, derive_tensor_sources, quantization_report
from mcucompile.report.summary import quantization_line

GOLDEN = REPO / "tests" / "data" / "report"
MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
CASES = {
    "mnist": (MNIST, dict(board="qemu-m7", calib=str(REPO / "models" / "mnist" / "mnist_calib_200.npz"))),
    "resnet8_patched": (SHARED_MODELS / "resnet8_float.onnx",
                        dict(board="host", calib_samples=4,
                             patch=PatchOptions(mode="forced", split=4, patches=2, input_by_patch=True))),
    "kws_tflite": (SHARED_MODELS / "kws_dscnn_int8.tflite", dict(board="qemu-m7")),
}


def _compile(name: str):
    path, kw = CASES[name]
    return compile_model(path, CompileOptions(progress=False, **kw))


def _report_json(compiled, tmp_path: Path) -> dict:
    """report.json as write_library writes it, with the machine-dependent parts made portable."""
    out = write_library(compiled, tmp_path / "out")
    rep = json.loads((Path(out) / "report.json").read_text())
    rep["model"] = Path(rep["model"]).name
    rep.pop("compiler_version")
    return rep


def _comparable(rep: dict) -> dict:
    """What the goldens pin: everything but the notes' wording (the stages that write a note own it)."""
    return {**rep, "notes": len(rep["notes"])}


def _summary(compiled) -> str:
    return format_summary(compiled.report).replace(str(compiled.model_path), compiled.model_path.name) + "\n"


@pytest.fixture(scope="module")
def compiled():
    """Each golden case compiled once for the module's tests (a few seconds each)."""
    return {name: _compile(name) for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_report_json_is_what_the_dict_report_wrote(name, compiled, tmp_path):
    rep = _report_json(compiled[name], tmp_path)
    sources = rep.pop("quantization_sources")  # the keys added since the goldens were recorded
    assert set(sources) == {"model", "calibrated", "fixed"}
    assert rep.pop("rounding") == "double"  # float ONNX and .tflite: TFLite's rounding
    rep, golden = _comparable(rep), _comparable(json.loads((GOLDEN / f"{name}.json").read_text()))
    assert list(rep) == list(golden), "report.json's keys (or their order) changed"
    for key in golden:
        assert rep[key] == golden[key], f"report.json[{key!r}] changed"
    assert json.dumps(rep, indent=1) == json.dumps(golden, indent=1)  # nested key order too


@pytest.mark.parametrize("name", list(CASES))
def test_summary_is_unchanged(name, compiled):
    assert _summary(compiled[name]) == (GOLDEN / f"{name}_summary.txt").read_text()


def _untyped(value, where: str) -> list[str]:
    """Paths inside ``value`` that hold a dict, a list or a numpy value instead of typed data."""
    if dataclasses.is_dataclass(value):
        return [p for f in dataclasses.fields(value) for p in _untyped(getattr(value, f.name), f"{where}.{f.name}")]
    if isinstance(value, tuple):
        return [p for i, v in enumerate(value) for p in _untyped(v, f"{where}[{i}]")]
    if isinstance(value, (dict, list, set)) or type(value).__module__ == "numpy":
        return [f"{where}: {type(value).__name__}"]
    return []


@pytest.mark.parametrize("name", list(CASES))
def test_the_report_is_typed_data_all_the_way_down(name, compiled):
    rep = compiled[name].report
    assert isinstance(rep, Report)
    assert _untyped(rep, "report") == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.peak_sram_bytes = 0
    # what bench and the summary read are attributes of the plan taken
    assert rep.estimated_instructions == rep.plan_choice.chosen.estimated_instructions > 0
    assert rep.macs == sum(lay.macs for lay in rep.layers) > 0


def test_the_patched_report_and_the_plan_agree(compiled):
    c = compiled["resnet8_patched"]
    rep = c.report
    pp = rep.patch_plan
    assert (pp.stage_layers, pp.grid, pp.input_by_patch) == (4, 2, True) == (c.patch.stage_len, c.patch.grid, True)
    assert len(pp.regions) == pp.grid ** 2 and pp.regions[0][0].tensor == c.patch.split
    assert rep.input_in_sram == "by patch (callback)" and rep.stage_layers == 4
    assert rep.memory_profile.patched == tuple(c.plan.live_bytes())
    assert rep.peak_sram_bytes == c.plan.arena_size < rep.peak_sram_layerwise_bytes
    assert rep.plan_choice.alternative is None and rep.tflm is None  # forced; not a .tflite


def test_tflite_report_has_the_tflm_arena(compiled):
    rep = compiled["kws_tflite"].report
    assert rep.source_format == "tflite" and rep.tflm.arena_bytes > rep.peak_sram_bytes and rep.tflm.note is None
    assert rep.patch_plan is None and rep.memory_profile.patched is None and len(rep.patch_candidates) > 0


def test_plot_reads_the_typed_report(compiled, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (the dev extra)")
    from mcucompile.report.plot import plot_memory

    for name in ("resnet8_patched", "kws_tflite"):
        plot_memory(compiled[name].report, str(tmp_path / f"{name}.png"))
        assert (tmp_path / f"{name}.png").stat().st_size > 5000


# --- quantization sources ------------------------------------------------------------------------------

def _user_names(graph) -> list[str]:
    return list(dict.fromkeys(graph.tensors[t].origin or t for t in activation_tensors(graph)))


def _covers_every_activation(q: QuantizationReport, graph) -> None:
    """Each activation the user knows by name is listed, under one source."""
    listed = q.from_model + q.calibrated + q.fixed
    assert len(listed) == len(set(listed)) and set(listed) == set(_user_names(graph))


def test_a_float_onnx_model_is_calibrated_but_what_its_ops_fix(compiled):
    c = compiled["mnist"]
    # derived from the source format (what build_report does when the quantization stage says nothing)
    q = quantization_report(c.graph, derive_tensor_sources(c.graph, "onnx"))
    assert q.from_model == () and q.fixed == ("softmax",)  # the ONNX name of the softmax output
    assert q.calibrated[0] == "input" and len(q.calibrated) == len(_user_names(c.graph)) - 1
    # what compile_model reports, whoever says where the params came from: nothing from the model
    q = c.report.quantization
    assert q.from_model == () and "input" in q.calibrated
    _covers_every_activation(q, c.graph)
    assert "quantization:" not in format_summary(c.report)  # not partly quantized: nothing to say


def test_pre_quantized_models_carry_their_params(compiled):
    qdq = compile_model(SHARED_MODELS / "resnet8_int8_qdq.onnx", CompileOptions(board="host", progress=False))
    assert qdq.source_format == "onnx-qdq"
    for c in (compiled["kws_tflite"], qdq):
        derived = quantization_report(c.graph, derive_tensor_sources(c.graph, c.source_format))
        assert derived.calibrated == () == derived.fixed and derived.from_model == tuple(_user_names(c.graph))
        q = c.report.quantization
        assert q.calibrated == () and c.graph.inputs[0] in q.from_model
        _covers_every_activation(q, c.graph)
        rep = json.loads(json.dumps(c.report.to_json_dict()))
        assert rep["quantization_sources"] == {"model": list(q.from_model), "calibrated": [], "fixed": list(q.fixed)}
        assert "quantization:" not in format_summary(c.report)


def _partly(compiled, calibrated: int):
    """mnist's report as if its first ``calibrated`` activations had been calibrated and the model had
    carried the params of the rest (a partly quantized model)."""
    c = compiled["mnist"]
    acts = activation_tensors(c.graph)
    sources = {t: "calibrated" if i < calibrated else "model" for i, t in enumerate(acts)}
    rep = build_report(c.graph, c.plan, c.board, "m.onnx", choice=_choice(c), schedule=c.schedule,
                       tensor_sources=sources)
    return rep, [c.graph.tensors[t].origin or t for t in acts]


def _choice(c):
    from mcucompile.patch.search import choose_patching

    return choose_patching(c.graph, c.board.sram_bytes)


def test_a_partly_quantized_model_says_which_tensors_were_calibrated(compiled):
    rep, names = _partly(compiled, 2)
    q = rep.quantization
    assert q.calibrated == tuple(names[:2]) and q.from_model == tuple(names[2:]) and q.fixed == ()
    assert rep.to_json_dict()["quantization_sources"] == {"model": names[2:], "calibrated": names[:2], "fixed": []}
    lines = [line for line in format_summary(rep).splitlines() if line.startswith("quantization:")]
    assert lines == [f"quantization: {len(names) - 2} tensors from the model, 2 calibrated ({names[0]}, {names[1]})"]


def test_the_summary_names_at_most_five_calibrated_tensors(compiled):
    rep, names = _partly(compiled, 7)
    line = quantization_line(rep.quantization)
    assert line == (f"quantization: {len(names) - 7} tensors from the model, 7 calibrated "
                    f"({', '.join(names[:5])}, ...)")
    assert quantization_line(QuantizationReport(("a", "b"), ("c",), ("d",))) == (
        "quantization: 2 tensors from the model, 1 calibrated (c), 1 fixed by their op")
    assert quantization_line(QuantizationReport((), ("c",), ("d",))) == ""


def test_tensor_sources_must_name_graph_tensors_and_known_sources(compiled):
    c = compiled["mnist"]
    with pytest.raises(ValueError, match="expected one of"):
        build_report(c.graph, c.plan, c.board, "m.onnx", choice=_choice(c),
                     tensor_sources={c.graph.inputs[0]: "guessed"})
    with pytest.raises(ValueError, match="not in the graph"):
        build_report(c.graph, c.plan, c.board, "m.onnx", choice=_choice(c), tensor_sources={"nope": "model"})


def _record() -> int:
    """Write the goldens from the code as it is now (see the module docstring)."""
    import tempfile

    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        c = _compile(name)
        with tempfile.TemporaryDirectory() as tmp:
            rep = _report_json(c, Path(tmp))
        rep.pop("quantization_sources")
        rep.pop("rounding")
        (GOLDEN / f"{name}.json").write_text(json.dumps(rep, indent=1) + "\n")
        (GOLDEN / f"{name}_summary.txt").write_text(_summary(c))
        print(f"wrote {GOLDEN / name}.json, {name}_summary.txt")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    sys.exit(_record())
