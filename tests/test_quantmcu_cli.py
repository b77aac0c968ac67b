"""QuantMCU on the command line and in what the user reads (compiler/cli.py, compiler/report/, compiler/api/verify.py,
compiler/api/debug.py):

- the QuantMCU argument group in ``--help``; out-of-range method options give one error line, exit 2 and no output
  folder; a method option without ``--quantmcu`` says to add it;
- report.json's ``quantmcu`` object, the summary's lines, report.html's section and ``--plot``, from a QuantMCU
  result assembled with the real API (VDPC, the low-bit chain, its schedule, stage BitOPs, simulated quality) on a
  patched small CNN (conv, dw, pw, dw/s2, conv: the stage; conv, global pool after it);
- ``verify`` of that compile: the schedule with both chains is the one simulated (bit-exact), the chains each patch
  took are counted (and, on qemu-m4, compared with the device's), the quality against the 8-bit model is given;
- ``debug`` on qemu-m4 compares the stage patch by patch along the chains the simulator says the patches took.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time

import numpy as np
import pytest
from mcucompile import cli
from mcucompile.api import (
    CompileOptions,
    PatchOptions,
    compile_model,
    quantize_input,
    write_library,
)
from mcucompile.api.verify import agreement, verify_board, verify_host
from mcucompile.codegen import generate_c
from mcucompile.ops.base import dequantize_values
from mcucompile.quant.simulate import run_int
from mcucompile.quantmcu import plan_vdpc, stage_maps
from mcucompile.quantmcu.lowbit import build_lowbit_chain, lowbit_schedule, stage_bitops
from mcucompile.quantmcu.options import (
    FeatureMapChoice,
    QuantmcuOptions,
    QuantmcuResult,
    SearchStep,
)
from mcucompile.report import format_summary, quantmcu_report
from mcucompile.report.html import HtmlReport, render_html
from mcucompile.schedule.schedule import run_schedule_int
from test_quantmcu_chain import small_cnn_path

SPLIT, GRID = 5, 3  # conv a | dw b | pw c | dw/s2 d | conv e (the split) ; conv f, global pool


def _onnx_net(folder):
    """The small CNN of tests/test_quantmcu_chain.py."""
    return small_cnn_path(folder)


@pytest.fixture(scope="module")
def net_path(tmp_path_factory):
    return _onnx_net(tmp_path_factory.mktemp("qmcli"))


def run(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_error(rc: int, err: str, *fragments: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("mcucompile: error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


# --- the command line ------------------------------------------------------------------------------------------

def test_help_lists_the_quantmcu_group(capsys, net_path):
    for cmd in ((), ("verify",), ("bench",), ("debug",)):
        with pytest.raises(SystemExit) as e:
            cli.main([*cmd, str(net_path), "--help"])
        assert e.value.code == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
        assert "QuantMCU" in text, cmd
        for flag in ("--quantmcu", "--qm-bits", "--qm-lambda", "--qm-bitops-target", "--qm-guard", "--qm-floor",
                     "--qm-holdout", "--qm-clipping", "--qm-per-channel", "--qm-no-per-channel", "--qm-sub-patches",
                     "--qm-outlier-rule", "--qm-outlier-param", "--qm-check-at", "--qm-max-outlier-share"):
            assert flag in text, (cmd, flag)
    # the defaults are named
    for default in ("default 8,4,2", "default 0.5", "default sqnr", "20 dB", "0.98", "default mse",
                    "default percentile", "99.9", "default first_map", "first_map|input|auto"):
        assert default in text, default


BAD = [
    (("--qm-bits", "8,3"), ("--qm-bits", "8,3")),
    (("--qm-bits", "4,2"), ("--qm-bits", "8 among them")),
    (("--qm-bits", "8,x"), ("--qm-bits",)),
    (("--qm-lambda", "1.5"), ("--qm-lambda", "[0, 1]")),
    (("--qm-lambda", "nan"), ("--qm-lambda",)),
    (("--qm-bitops-target", "0"), ("--qm-bitops-target", "(0, 1]")),
    (("--qm-guard", "psnr"), ("--qm-guard", "'sqnr', 'agreement' or 'off'")),
    (("--qm-guard", "agreement", "--qm-floor", "98"), ("--qm-floor", "[0, 1]")),
    (("--qm-floor", "inf"), ("--qm-floor", "finite")),
    (("--qm-guard", "off", "--qm-floor", "25"), ("--qm-floor", "--qm-guard off", "fix: drop one")),
    (("--qm-holdout", "1"), ("--qm-holdout", "(0, 1)")),
    (("--qm-clipping", "kl"), ("--qm-clipping", "'mse' or 'minmax'")),
    (("--qm-sub-patches", "5"), ("--qm-sub-patches", "1 to 4")),
    (("--qm-sub-patches", "two"), ("--qm-sub-patches", "whole number")),
    (("--qm-outlier-rule", "iqr"), ("--qm-outlier-rule", "percentile, sigma")),
    (("--qm-outlier-param", "100.5"), ("--qm-outlier-param", "(0, 100]")),
    (("--qm-outlier-rule", "sigma", "--qm-outlier-param", "-1"), ("--qm-outlier-param", "negative")),
    (("--qm-check-at", "middle"), ("--qm-check-at", "first_map, input")),
    (("--qm-max-outlier-share", "0"), ("--qm-max-outlier-share", "(0, 1]")),
    (("--qm-max-outlier-share", "1.5"), ("--qm-max-outlier-share", "(0, 1]")),
    (("--qm-per-channel", "--qm-no-per-channel"), ("--qm-no-per-channel", "not allowed")),
]


@pytest.mark.parametrize("command", ["compile", "verify", "bench", "debug"])
def test_out_of_range_options_one_line_exit_2_no_output(capsys, tmp_path, net_path, command):
    prefix = () if command == "compile" else (command,)
    board = ("--board", "qemu-m4") if command == "bench" else ()
    for k, (flags, fragments) in enumerate(BAD if command == "compile" else BAD[:3]):
        out = tmp_path / f"out{k}"
        rc, _, err = run(capsys, *prefix, net_path, *board, "--quantmcu", "--split", SPLIT, "--patches", GRID, *flags,
                         "-o", out)
        one_error(rc, err, *fragments)
        assert not out.exists(), flags


def test_method_options_need_quantmcu(capsys, tmp_path, net_path):
    for flags, name in ((("--qm-bits", "8,4"), "--qm-bits"), (("--qm-guard", "off"), "--qm-guard"),
                        (("--qm-no-per-channel",), "--qm-per-channel"), (("--qm-check-at", "input"), "--qm-check-at")):
        out = tmp_path / "o"
        rc, _, err = run(capsys, net_path, "--split", SPLIT, "--patches", GRID, *flags, "-o", out)
        one_error(rc, err, name, "fix: add --quantmcu")
        assert not out.exists()
    rc, _, err = run(capsys, "verify", net_path, "--qm-lambda", "0.3")
    one_error(rc, err, "--qm-lambda", "fix: add --quantmcu")


def test_quantmcu_without_a_patch_plan_is_refused(capsys, tmp_path, net_path):
    for flags, fragments in ((("--no-patch",), ("--no-patch", "fix")),
                             ((), ("--quantmcu needs a patched stage", "layer by layer", "fix"))):
        out = tmp_path / "o"
        rc, _, err = run(capsys, net_path, "--quantmcu", *flags, "--quiet", "-o", out)
        one_error(rc, err, *fragments)
        assert not out.exists()


def test_cli_compile_end_to_end(capsys, tmp_path, net_path):
    out, png = tmp_path / "out", tmp_path / "qm.png"
    plot = ("--plot", png) if _has_matplotlib() else ()
    rc, text, err = run(capsys, net_path, "--quantmcu", "--split", SPLIT, "--patches", GRID, "--board", "qemu-m4",
                        "--qm-bits", "8,4", *plot, "-o", out)
    assert rc == 0, err
    data = json.loads((out / "report.json").read_text())
    q = data["quantmcu"]
    # the report's patch plan is the one the code runs (QuantMCU's)
    assert (data["patch_plan"]["stage_layers"], data["patch_plan"]["grid"]) == (q["plan"]["stage_layers"],
                                                                             q["plan"]["grid"])
    for key in ("bitops_8bit", "bitops", "bitops_model_8bit", "bitops_model", "bitops_8bit_own_plan", "saving",
                "feature_maps", "threshold", "checked_map", "outlier_patch_share", "quality", "search_seconds",
                "entropy_only", "search_steps", "plan", "base_plan", "flash_bytes", "options"):
        assert key in q, key
    assert q["options"]["bits"] == [8, 4] and q["plan"]["grid"] == GRID and q["plan"]["stage_layers"] == SPLIT
    assert all(m["bits"] in (8, 4) for m in q["feature_maps"])
    assert q["feature_maps"][0]["role"] == "input" and q["feature_maps"][-1]["role"] == "output"
    assert q["bitops"] <= q["bitops_8bit"] and q["quality"]["guard"] == "sqnr" and q["quality"]["floor"] == 20.0
    assert 0 <= q["outlier_patch_share"] <= 1 and q["search_seconds"] > 0
    assert "QuantMCU  3x3 patches over 5 layers; bits per feature map:" in text
    assert "outlier patches (8-bit chain):" in text and "stage BitOPs" in text and "floor SQNR 20.0 dB" in text
    assert 'id="quantmcu"' in (out / "report.html").read_text()
    if plot:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the memory profile is the two-chain arena's, its chains never live together: never above the arena
    assert any(m["bits"] < 8 for m in q["feature_maps"])
    assert 0 < max(data["memory_profile"]["patched"]) <= data["arena_bytes"]
    # the top-level estimate is the QuantMCU plan's (expected over the calibration samples' chains)
    if q.get("expected_instructions") is not None:
        assert data["estimated_instructions"] == q["expected_instructions"]


def test_nothing_lowered_runs_8bit_patchings_loop(net_path):
    """--qm-bits 8: both chains would be the 8-bit stage; the code runs 8-bit patching's loop without the check
    and the report still says what QuantMCU searched."""
    forced = PatchOptions(mode="forced", split=SPLIT, patches=GRID)
    base = CompileOptions(board="host", patch=forced, progress=False)
    c8 = compile_model(net_path, base)
    cq = compile_model(net_path, dataclasses.replace(base, quantmcu=QuantmcuOptions(bits=(8,))))
    assert cq.quantmcu is not None and all(m.bits == 8 for m in cq.quantmcu.feature_maps)
    assert len(cq.schedule.loop.chains) == 1 and cq.schedule.loop.dispatch is None
    assert cq.plan.arena_size == c8.plan.arena_size
    assert [n.name for n in cq.graph.nodes] == [n.name for n in c8.graph.nodes]
    assert any("without the outlier check" in w for w in cq.warnings)
    assert cq.report.to_json_dict()["quantmcu"]["bitops"] == cq.report.to_json_dict()["quantmcu"]["bitops_8bit"]
    # the code is 8-bit patching's, but for the header line that says so
    for name, text in cq.sources.files.items():
        lines = [line for line in text.splitlines() if "quantmcu: " not in line]
        assert lines == c8.sources.files[name].splitlines(), name
    assert "quantmcu: no feature map lowered: 8-bit patching's loop, no outlier check" in cq.sources.files["src/model.c"]


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


# --- a QuantMCU compile assembled from the real API -----------------------------------------------------------

HELD = 6  # calibration samples held back for the quality figures (the guard's samples)
BITS = (("b", 4), ("c", 2), ("d", 4))  # the order the steps lower the maps


def _ir(g, name):
    return next(t for t, v in g.tensors.items() if v.origin == name)


def _quality(c8, schedule, held) -> dict[str, float]:
    """SQNR (dB) and top-1 agreement of ``schedule``'s outputs against the 8-bit model on ``held``."""
    g = c8.graph
    q = g.tensors[g.outputs[0]].quant
    got = np.stack([dequantize_values(run_schedule_int(schedule, {g.inputs[0]: x})[g.outputs[0]], q).reshape(-1)
                    for x in held])
    ref = np.stack([dequantize_values(run_int(g, {g.inputs[0]: x})[g.outputs[0]], q).reshape(-1) for x in held])
    top1, sqnr, _ = agreement(got, ref)
    return {"sqnr": sqnr, "agreement": top1}


def _chain(c8, vdpc, calib, bits, options):
    g = c8.graph
    chain = build_lowbit_chain(g, c8.patch, vdpc, {_ir(g, k): b for k, b in bits.items()}, calib,
                               clipping=options.clipping, per_channel=options.per_channel)
    return chain, *lowbit_schedule(chain, vdpc, c8.target)


def assemble(c8, floor: float = 0.0):
    """A QuantMCU compile of the patched 8-bit compile ``c8``, each figure measured with the real API: VDPC (its
    threshold at the median patch maximum of the checked map, so that the calibration patches go both ways),
    the maps lowered one step at a time (each step's BitOPs ratio and quality measured; the guard keeps a step
    at ``floor`` dB or more), the low-bit chain's schedule and arena, stage BitOPs over the calibration data.
    Returns (compiled, result)."""
    t0 = time.perf_counter()
    options = QuantmcuOptions(floor=floor)
    g, plan = c8.graph, c8.patch
    calib_all = quantize_input(c8, c8.calib)
    calib, held = calib_all[:-HELD], calib_all[-HELD:]
    vdpc = plan_vdpc(g, plan, calib, options.vdpc)
    stats = vdpc.stats.map(vdpc.tensor)
    median = int(np.median(stats.patch_max))
    vdpc = dataclasses.replace(vdpc, threshold=median, outlier_patches=stats.outlier_patches(median))
    steps, bits = [], {}
    base8 = None
    for name, b in BITS:
        trial = {**bits, name: b}
        _, schedule, _ = _chain(c8, vdpc, calib, trial, options)
        b8, bq = stage_bitops(schedule, calib)
        base8 = b8
        quality = _quality(c8, schedule, held)
        ok = quality["sqnr"] >= floor
        steps.append(SearchStep(_ir(g, name), b, float(len(steps) + 1), bq / b8, quality["sqnr"], ok))
        if ok:
            bits = trial
    chain, schedule, arena = _chain(c8, vdpc, calib, bits, options)
    b8, bq = stage_bitops(schedule, calib)
    assert b8 == base8
    rest = sum(lay.macs for lay in c8.report.layers[plan.stage_len:]) * 64
    maps = []
    for m in stage_maps(g, plan):
        if m in (g.inputs[0], plan.split):
            continue
        low = chain.tensor_of.get(m, m)
        scales = chain.channel_scales.get(m)
        q = chain.graph.tensors[low].quant
        maps.append(FeatureMapChoice(m, chain.bits.get(m, 8), tuple(float(s) for s in (scales if scales is not None
                                                                                        else [q.s])),
                                     int(q.zp), m == vdpc.tensor))
    quality = _quality(c8, schedule, held)
    result = QuantmcuResult(
        options=options, schedule=schedule, arena=arena, plan=chain.plan, base_plan=plan, sub_patches=1, vdpc=vdpc,
        feature_maps=tuple(maps), outlier_patch_share=vdpc.outlier_patch_share, bitops_8bit=b8, bitops=bq,
        bitops_model_8bit=b8 + rest, bitops_model=bq + rest, bitops_8bit_own_plan=b8, quality=quality,
        search_seconds=time.perf_counter() - t0, entropy_only={_ir(g, k): b for k, b in BITS},
        entropy_only_quality=_quality(c8, _chain(c8, vdpc, calib, dict(BITS), options)[1], held),
        steps=tuple(steps), flash_bytes=chain.flash_bytes)
    report = dataclasses.replace(c8.report, quantmcu=quantmcu_report(result, chain.graph))
    compiled = dataclasses.replace(c8, graph=chain.graph, patch=chain.plan, plan=arena, schedule=schedule,
                                   sources=generate_c(schedule, arena, c8.options.name), report=report)
    return compiled, result


def _compile(path, board):
    return compile_model(path, CompileOptions(board=board, progress=False, calib_samples=24,
                                              patch=PatchOptions(mode="forced", split=SPLIT, patches=GRID)))


@pytest.fixture(scope="module")
def host_qm(net_path):
    return assemble(_compile(net_path, "host"))


def test_report_json_quantmcu_object(host_qm, tmp_path):
    compiled, result = host_qm
    out = write_library(compiled, tmp_path / "out")
    data = json.loads((out / "report.json").read_text())
    q = data["quantmcu"]
    for key in ("options", "plan", "base_plan", "bitops_8bit", "bitops", "saving", "bitops_model_8bit",
                "bitops_model", "saving_model", "bitops_8bit_own_plan", "saving_own_plan", "checked_map", "threshold",
                "outlier_patch_share", "patch_outlier_share", "feature_maps", "quality", "entropy_only",
                "search_steps", "search_seconds", "flash_bytes"):
        assert key in q, key
    assert q["bitops_8bit"] == round(result.bitops_8bit) and q["bitops"] == round(result.bitops)
    assert q["bitops"] < q["bitops_8bit"] and q["saving"] == pytest.approx(result.bitops_8bit / result.bitops, 1e-5)
    assert q["bitops_model"] < q["bitops_model_8bit"]
    assert q["plan"] == {"split_layer": SPLIT - 1, "split_tensor": compiled.patch.split, "stage_layers": SPLIT,
                         "grid": GRID, "sub_patches": 1}
    assert q["checked_map"] == "a" and q["threshold"] == result.threshold
    assert len(q["patch_outlier_share"]) == GRID and all(len(r) == GRID for r in q["patch_outlier_share"])
    share = np.asarray(q["patch_outlier_share"]).reshape(-1)
    assert share.mean() == pytest.approx(q["outlier_patch_share"], abs=1e-5) and 0 < q["outlier_patch_share"] < 1
    names = [m["name"] for m in q["feature_maps"]]
    assert names == ["a", "b", "c", "d"]
    by = {m["name"]: m for m in q["feature_maps"]}
    assert by["a"]["checked"] and by["a"]["bits"] == 8
    assert [by[k]["bits"] for k in "bcd"] == [b for _, b in BITS]
    for m in q["feature_maps"]:
        assert isinstance(m["zero_point"], int) and len(m["scales"]) >= 1
    assert any(len(by[k]["scales"]) > 1 for k in "bcd")  # per-channel scales listed
    assert q["quality"]["guard"] == "sqnr" and q["quality"]["floor"] == 0.0
    assert q["quality"]["sqnr"] == pytest.approx(result.quality["sqnr"], rel=1e-5)
    assert 0 <= q["quality"]["agreement"] <= 1
    assert q["entropy_only"]["bits"] == {"b": 4, "c": 2, "d": 4}
    assert [s["map"] for s in q["search_steps"]] == ["b", "c", "d"]
    assert q["options"]["outlier_rule"] == "percentile" and q["options"]["outlier_param"] == 99.9
    assert q["options"]["bits"] == [8, 4, 2] and q["options"]["check_at"] == "first_map"
    assert q["flash_bytes"] == result.flash_bytes > 0
    # the report without QuantMCU has no such key (the golden reports are unchanged)
    assert "quantmcu" not in dataclasses.replace(compiled.report, quantmcu=None).to_json_dict()


def test_summary_lines(host_qm):
    compiled, result = host_qm
    text = format_summary(compiled.report)
    lines = [line for line in text.splitlines() if line.startswith(("QuantMCU", "          "))]
    qm = "\n".join(lines)
    assert "bits per feature map: a 8 (checked), b 4, c 2, d 4" in qm
    assert f"{100 * result.outlier_patch_share:.1f}% of the calibration patches" in qm
    assert f"{result.bitops_8bit / result.bitops:.2f}x fewer" in qm
    assert f"SQNR {result.quality['sqnr']:.1f} dB" in qm and "floor SQNR 0.0 dB: met" in qm


def test_html_and_plot(host_qm, tmp_path):
    compiled, result = host_qm
    page = render_html(HtmlReport(compiled.report))
    assert 'id="quantmcu"' in page and 'href="#quantmcu"' in page
    assert 'id="plot-quantmcu-bits"' in page and 'id="plot-quantmcu-patches"' in page
    shares = [float(v) for v in __import__("re").findall(r'data-patch="\d+" data-share="([0-9.e-]+)"', page)]
    assert len(shares) == GRID * GRID
    assert np.mean(shares) == pytest.approx(result.outlier_patch_share, abs=1e-5)
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib")
    from mcucompile.report.plot import plot_memory

    png = tmp_path / "m.png"
    plot_memory(compiled.report, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_verify_host_simulates_the_quantmcu_schedule(host_qm):
    compiled, _ = host_qm
    res = verify_host(compiled, compiled.calib[:8])
    assert res.bit_exact and res.passed
    ch = res.chains
    assert ch is not None and ch.inputs == 8 and ch.patches == GRID * GRID
    assert sum(ch.chains) == 8 * GRID * GRID and all(n > 0 for n in ch.chains), ch.chains
    # the host runner prints the C's chain per patch: equal to the simulator's
    assert ch.device_chains == ch.chains and ch.device_mismatches == 0, ch
    assert "every patch's chain equal to the simulator's" in res.format()
    assert ch.vs_8bit and ch.vs_8bit[0].reference == "8-bit model" and math.isfinite(ch.vs_8bit[0].sqnr_db)
    assert ch.eight_bit_vs_float  # the 8-bit model against onnxruntime float, for contrast
    text = res.format()
    assert "chains (simulator)" in text and "low-bit" in text and "vs the 8-bit model" in text
    # the 8-bit layer-by-layer simulation is not what the C computes: verify must not compare with it
    g = compiled.graph
    x_q = quantize_input(compiled, compiled.calib[:8])
    eight = np.stack([run_int(g, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q])
    quant = np.stack([run_schedule_int(compiled.schedule, {g.inputs[0]: x})[g.outputs[0]].reshape(-1) for x in x_q])
    assert not np.array_equal(eight, quant)


def _arm_tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")


@pytest.fixture(scope="module")
def m4_qm(net_path):
    _arm_tools()
    return assemble(_compile(net_path, "qemu-m4"))


def test_verify_qemu_m4_chain_counts_from_the_device(m4_qm, tmp_path):
    compiled, _ = m4_qm
    res = verify_board(compiled, compiled.calib[:6], out_dir=tmp_path / "fw")
    assert res.bit_exact and res.passed
    ch = res.chains
    assert ch.device_chains is not None and ch.device_mismatches == 0 and ch.device_chains == ch.chains
    assert all(n > 0 for n in ch.chains)
    assert "chains (device)" in res.format()
    page = (tmp_path / "fw" / "report.html").read_text()
    assert "the device&#x27;s chain of every patch equals the simulator&#x27;s" in page
def test_debug_qemu_m4_follows_the_chains(m4_qm, tmp_path):
    from mcucompile.api.debug import device_check

    compiled, _ = m4_qm
    x = compiled.calib[:1]
    g = compiled.graph
    taken: list[int] = []
    run_schedule_int(compiled.schedule, {g.inputs[0]: quantize_input(compiled, x)[0]}, taken)
    assert len(set(taken)) == 2, taken  # the first input sends patches both ways
    res = device_check(compiled, x[0], tmp_path / "fw")
    assert res.bit_exact, res
    assert res.dumps > len(g.nodes) - SPLIT  # the stage's per-patch outputs compared too
    assert "chain" in res.note
    # a bit flipped in the low-bit chain's 2-bit map (layer 2: its first MODEL_END in model.c is the probe's, which
    # the patches without outliers run on): found at that layer, in the first patch that took the low-bit chain
    from test_debug import _break_layer

    broken = device_check(compiled, x[0], tmp_path / "fw2", edit_project=_break_layer(2))
    assert broken.mismatch is not None and broken.mismatch.layer == 2, broken
    assert broken.mismatch.patch == taken.index(compiled.schedule.loop.dispatch.inlier_chain), (broken, taken)


def test_cli_verify_quantmcu_qemu_m4(capsys, net_path):
    _arm_tools()
    rc, text, err = run(capsys, "verify", net_path, "--quantmcu", "--split", SPLIT, "--patches", GRID, "--board",
                        "qemu-m4", "-n", 6, "--quiet")
    assert rc == 0, err + text
    assert "C on qemu-m4    vs simulator: bit-exact" in text
    assert "chains (simulator) chain 0 (8-bit, outlier patches)" in text and "chain 1 (low-bit)" in text
    assert "every patch's chain equal to the simulator's" in text
    assert "output 'y' vs the 8-bit model: top-1 agreement" in text and "8-bit model 'y' vs onnxruntime float" in text
    # without --data verify runs on the calibration inputs, which QuantMCU's guard saw: the user is told
    assert "warning: verify runs on the calibration inputs, which QuantMCU calibrated and guarded" in err


def test_synthetic_calibration_notes_say_give_real_inputs(net_path):
    """Without --calib the compile calibrates on synthetic inputs: a threshold the share cap raised says so and
    names the fix (compile_model tells plan_quantmcu the data was synthetic)."""
    from mcucompile.quantmcu.vdpc import VdpcOptions

    forced = PatchOptions(mode="forced", split=SPLIT, patches=GRID)
    c = compile_model(net_path, CompileOptions(board="host", patch=forced, progress=False, quantmcu=QuantmcuOptions(
        vdpc=VdpcOptions(max_outlier_share=0.05))))
    assert any("cap" in w and "give --calib with real inputs" in w for w in c.warnings), c.warnings
    assert c.report.to_json_dict()["quantmcu"]["options"]["max_outlier_share"] == 0.05


def test_cli_bench_quantmcu_qemu_m4_times_every_input(capsys, tmp_path, net_path):
    """A run-time check picks each patch's chain, so one input's instructions say little: bench times every input
    it runs (8 by default under --quantmcu), the first with the per-layer counters, the others without."""
    _arm_tools()
    args = ("bench", net_path, "--quantmcu", "--split", SPLIT, "--patches", GRID, "--board", "qemu-m4", "--quiet")
    rng = np.random.default_rng(5)
    a, b = rng.random((2, 1, 3, 19, 17), np.float32)
    np.savez(tmp_path / "d.npz", x=np.concatenate([a, b, a, b]))
    rc, text, err = run(capsys, *args, "--data", tmp_path / "d.npz", "--json")
    assert rc == 0, err + text
    res = json.loads(text)
    times = res["inputs"]
    assert len(times) == 4 and times[0] == res["total"] and all(t > 0 for t in times), times
    # the same input, the same instructions, to the counter's resolution (a SysTick tick: 40 under QEMU)
    assert abs(times[1] - times[3]) <= 80, times
    assert times[2] < times[0], times  # input a again, without the per-layer counters
    rc, text, err = run(capsys, *args)
    assert rc == 0, err + text
    assert "per input          8 inputs; inputs 2-8 without the per-layer counters: mean" in text, text
