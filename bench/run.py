#!/usr/bin/env python3
"""Benchmarks (measure, do not assert): per model and emulated board, instructions of one inference with the
portable kernels and with ``--kernels auto`` (the fastest our kernels offer for the core: the DSP extension's
SIMD32 kernels on Cortex-M4/M7, the MVE (Helium) kernels on Cortex-M55), instr/MAC, the ratio to TFLite Micro + CMSIS-NN on the same core (from
../shared/models/mlperf_tiny/README.md), the share of MACs on fast kernels, flash (ELF text + data) and peak
SRAM (the model arena, scratch included) of both builds, and the issue's other two targets: code (flash without
the constant arrays) at most 1.5x the portable build's, peak SRAM within +5% of it. With ``CMSIS_NN_DIR`` set
(a CMSIS-NN checkout, see docs/cmsis-nn.md) also ``--kernels cmsis-nn`` (and the CMSIS-NN commit measured, and
auto/cmsis-nn); else that column reads "n/a (CMSIS_NN_DIR not set)".

Models: the four MLPerf Tiny int8 ``.tflite`` (the comparison with TFLite Micro: same model, same integer
semantics) and their float ONNX (our quantization), MNIST, MobileNetV2-0.35 (models/mbv2) and VWW patched
(a forced plan: the fast kernels in the per-patch stage). Layer by layer (``--no-patch``) except the patched
row. Counts are guest instructions under QEMU -icount shift=0 (deterministic), not cycles.

Usage: python bench/run.py [--boards qemu-m4,qemu-m55] [--models kws_int8,...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "models" / "mbv2"))

from mcucompile.api import CompileOptions, PatchOptions, bench, compile_model  # noqa: E402

SHARED = REPO.parent / "shared" / "models" / "mlperf_tiny"
MNIST = REPO / "models" / "mnist"
OFF = PatchOptions(mode="off")
#: name -> (model path or "mbv2", calibration, patch options, the TFLM network it compares with)
MODELS = {
    "kws_int8": (SHARED / "kws_dscnn_int8.tflite", None, OFF, "kws_dscnn"),
    "resnet8_int8": (SHARED / "resnet8_int8.tflite", None, OFF, "resnet8"),
    "vww_int8": (SHARED / "vww_mbv1_025_int8.tflite", None, OFF, "vww_mbv1_025"),
    "ad_int8": (SHARED / "ad_autoencoder_int8.tflite", None, OFF, "ad_autoencoder"),
    "kws_float": (SHARED / "kws_dscnn_float.onnx", None, OFF, "kws_dscnn"),
    "resnet8_float": (SHARED / "resnet8_float.onnx", None, OFF, "resnet8"),
    "vww_float": (SHARED / "vww_mbv1_025_float.onnx", None, OFF, "vww_mbv1_025"),
    "ad_float": (SHARED / "ad_autoencoder_float.onnx", None, OFF, "ad_autoencoder"),
    "mnist_cnn": (MNIST / "mnist_cnn.onnx", str(MNIST / "mnist_calib_200.npz"), OFF, None),
    "mbv2_035": ("mbv2", None, OFF, None),
    "vww_int8_patched": (SHARED / "vww_mbv1_025_int8.tflite", None, PatchOptions(mode="forced", split=8, patches=5),
                         "vww_mbv1_025"),
}
#: TFLite Micro + CMSIS-NN, one Invoke() of the int8 .tflite (shared/models/mlperf_tiny/README.md): instructions
#: on QEMU mps2-an386 (Cortex-M4) and mps3-an547 (Cortex-M55, MVE)
TFLM_CMSIS = {"qemu-m4": {"kws_dscnn": 7_698_196, "resnet8": 29_865_482, "vww_mbv1_025": 24_104_069,
                          "ad_autoencoder": 583_530},
              "qemu-m55": {"kws_dscnn": 1_813_685, "resnet8": 4_910_116, "vww_mbv1_025": 6_558_333,
                           "ad_autoencoder": 149_992}}
#: issue 11's targets, 0.8x TFLite Micro + CMSIS-NN
TARGET = 0.8
#: code (flash without the constant arrays) at most 1.5x the portable build's; peak SRAM at most +5% over it
CODE_TARGET, SRAM_TARGET = 1.5, 0.05


def _model_path(spec, tmp: Path) -> Path:
    if spec != "mbv2":
        return Path(spec)
    import onnx
    from make_mbv2 import build

    path = tmp / "mbv2_035.onnx"
    if not path.exists():
        onnx.save(build(128, 0.35), str(path))
    return path


def constants_bytes(compiled) -> int:
    """Flash the generated constant arrays take (weights in the kernels' layouts, biases, multipliers, tables):
    what ELF text holds beyond code."""
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4}
    text = compiled.sources.files["src/model_weights.c"]
    return sum(sizes[t] * int(n) for t, n in re.findall(r"^const (\w+) \w+\[(\d+)\]", text, re.M))


def cmsis_nn_commit() -> str | None:
    """``git describe`` of $CMSIS_NN_DIR (the CMSIS-NN the cmsis-nn column measured), None when it is not set."""
    where = os.environ.get("CMSIS_NN_DIR")
    if not where or not (Path(where) / "Include" / "arm_nnfunctions.h").is_file():
        return None
    res = subprocess.run(["git", "-C", where, "describe", "--tags", "--always"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else f"{where} (not a git checkout)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", default="qemu-m4,qemu-m55")
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args()
    cmsis = cmsis_nn_commit()
    print(f"cmsis-nn column: {'CMSIS-NN ' + cmsis + ' (--kernels cmsis-nn)' if cmsis else 'n/a (CMSIS_NN_DIR not set)'}")
    print(f"{'model':<17} {'board':<9} {'MACs':>11} {'portable':>12} {'auto':>12} {'cmsis-nn':>12} {'auto/cmsis':>10} "
          f"{'speedup':>7} {'instr/MAC':>9} "
          f"{'TFLM+CMSIS':>11} {'ratio':>6} {'target':>6} {'fast MACs':>9} {'flash B port/auto':>19} "
          f"{'code B port/auto':>17} {'code':>10} {'SRAM B port/auto':>17} {'SRAM':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            spec, calib, patch, net = MODELS[name]
            path = _model_path(spec, Path(tmp))
            for board in args.boards.split(","):
                res = {}
                for kernels in ("portable", "auto"):
                    c = compile_model(path, CompileOptions(board=board, calib=calib, progress=False, patch=patch,
                                                           kernels=kernels))
                    res[kernels] = (c, bench(c))
                (cp, rp), (ca, ra) = res["portable"], res["auto"]
                if cmsis:
                    cc = compile_model(path, CompileOptions(board=board, calib=calib, progress=False, patch=patch,
                                                            kernels="cmsis-nn"))
                    rc = bench(cc)
                    cm_s, cm_r = f"{rc.total:>12,}", f"{ra.total / max(rc.total, 1):>9.2f}x"
                else:
                    cm_s, cm_r = f"{'n/a':>12}", f"{'n/a':>10}"
                macs = sum(x["macs"] for x in ra.layers)
                ref = TFLM_CMSIS.get(board, {}).get(net)
                ratio = f"{ra.total / ref:>5.2f}x" if ref else f"{'-':>6}"
                # the targets are layer by layer; a patched row shows what the patch stage costs on top
                verdict = (f"{'ok' if ra.total <= TARGET * ref else 'miss':>6}" if ref and patch.mode == "off"
                           else f"{'-':>6}")
                ref_s = f"{ref:>11,}" if ref else f"{'-':>11}"
                flash = f"{rp.flash_bytes:,}/{ra.flash_bytes:,}"
                sram = f"{rp.arena_bytes:,}/{ra.arena_bytes:,}"
                code_p, code_a = rp.flash_bytes - constants_bytes(cp), ra.flash_bytes - constants_bytes(ca)
                code = f"{code_p:,}/{code_a:,}"
                code_x = code_a / max(code_p, 1)
                code_v = f"{code_x:.2f}x {'ok' if code_x <= CODE_TARGET else 'miss'}"
                sram_d = ra.arena_bytes / max(rp.arena_bytes, 1) - 1
                sram_v = f"{100 * sram_d:+.1f}% {'ok' if sram_d <= SRAM_TARGET else 'miss'}"
                print(f"{name:<17} {board:<9} {macs:>11,} {rp.total:>12,} {ra.total:>12,} {cm_s} {cm_r} "
                      f"{rp.total / max(ra.total, 1):>6.2f}x {ra.total / max(macs, 1):>9.2f} {ref_s} {ratio} {verdict} "
                      f"{100 * ca.report.fast_mac_share:>8.1f}% {flash:>19} {code:>17} {code_v:>10} {sram:>17} {sram_v:>11}",
                      flush=True)
    print("\ncmsis-nn: our generated code calling CMSIS-NN for every layer it runs bit-exactly (--kernels cmsis-nn; the "
          "in-harness stand-in for TFLite Micro + CMSIS-NN: same model, arena and emulator), auto/cmsis: the issue's M55 "
          "target wants < 1.")
    print("ratio: auto vs TFLite Micro + CMSIS-NN on the same core (int8 .tflite rows compare the same model; "
          f"float ONNX rows the same network, our quantization); target: <= {TARGET}x, layer by layer (a patched row "
          "trades instructions for SRAM). flash: ELF text + data; "
          "code: flash without the constant arrays (weights, biases, multipliers); SRAM: the model arena "
          "(activations and kernel scratch).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
