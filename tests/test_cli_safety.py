"""Safe by construction, as a user runs it: output folders never lose a user's file and are never
half-written, every option is validated, internal failures say they are bugs (exit 3, traceback in a log),
references are witnesses (one that fails is reported, the others still run)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS

from mcucompile import cli
from mcucompile.errors import UserError

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
MNIST_CALIB = REPO / "models" / "mnist" / "mnist_calib_200.npz"
MNIST_TEST = REPO / "models" / "mnist" / "mnist_test_2000.npz"
KWS_TFLITE = SHARED_MODELS / "kws_dscnn_int8.tflite"


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def main(capsys, *args) -> tuple[int, str, str]:
    """The CLI in-process (fast): exit code, stdout, stderr."""
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]


def assert_one_error(rc: int, err: str, *fragments: str) -> str:
    assert rc == 2, err
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("mcucompile: error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def user_dir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    (d / "mnist_cnn.onnx").write_bytes(MNIST.read_bytes())
    (d / "calib.npz").write_bytes(MNIST_CALIB.read_bytes())
    return d


# --- output safety -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [(), ("verify", "--board", "qemu-m7", "-n", "1"), ("bench",)])
def test_output_folder_holding_the_model_is_refused(user_dir, capsys, command):
    before = tree_digest(user_dir)
    rc, _, err = main(capsys, *command, user_dir / "mnist_cnn.onnx", "--calib", user_dir / "calib.npz", "-o", user_dir)
    assert_one_error(rc, err, "holds the input", "choose another -o folder")
    assert tree_digest(user_dir) == before


def test_output_dot_in_the_models_folder_is_refused(user_dir):
    before = tree_digest(user_dir)
    res = run_cli("mnist_cnn.onnx", "-o", ".", "--quiet", cwd=user_dir)
    assert_one_error(res.returncode, res.stderr, "holds the input")
    assert tree_digest(user_dir) == before


def test_non_empty_foreign_folder_is_refused(user_dir, capsys):
    out = user_dir / "project"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc, _, err = main(capsys, user_dir / "mnist_cnn.onnx", "--calib", user_dir / "calib.npz", "-o", out, "--quiet")
    assert_one_error(rc, err, "not empty and was not written by mcucompile")
    assert (out / "notes.txt").read_text() == "mine" and os.listdir(out) == ["notes.txt"]


def test_own_output_is_replaced_and_edits_are_never_overwritten(user_dir, capsys):
    out = user_dir / "out"
    args = (user_dir / "mnist_cnn.onnx", "--calib", user_dir / "calib.npz", "-o", out, "--quiet")
    assert main(capsys, *args)[0] == 0
    first = tree_digest(out)
    assert (out / ".mcucompile-manifest.json").is_file() and (out / "lib" / "model" / "src" / "model.c").is_file()
    assert main(capsys, *args)[0] == 0, "an unchanged earlier output is replaced"
    assert tree_digest(out) == first, "the same compile gives the same files"
    assert not [p for p in user_dir.iterdir() if p.name.startswith(".out.")], "temporary folders left behind"

    main_c = out / "src" / "main.c"
    main_c.write_text(main_c.read_text() + "/* my change */\n")
    rc, _, err = main(capsys, *args)
    assert_one_error(rc, err, "src/main.c (edited)")
    assert main_c.read_text().endswith("/* my change */\n")

    main_c.write_text(Path(main_c).read_text().replace("/* my change */\n", ""))
    (out / "lib" / "model" / "my_port.c").write_text("int x;\n")
    rc, _, err = main(capsys, *args)
    assert_one_error(rc, err, "lib/model/my_port.c (not written by mcucompile)")
    assert (out / "lib" / "model" / "my_port.c").exists()

    (out / "lib" / "model" / "my_port.c").unlink()
    (out / "report.json").unlink()
    rc, _, err = main(capsys, *args)
    assert_one_error(rc, err, "report.json (deleted)")


def test_output_built_by_make_can_be_rewritten(user_dir, capsys):
    """The project's own build folder (make writes build/) is a build product, not a user file."""
    out = user_dir / "fw"
    args = ("verify", user_dir / "mnist_cnn.onnx", "--board", "qemu-m7", "--calib", user_dir / "calib.npz",
            "-n", "1", "-o", out)
    rc, stdout, err = main(capsys, *args)
    assert rc == 0, err
    assert (out / "build" / "firmware.elf").is_file()
    rc, stdout, err = main(capsys, *args)
    assert rc == 0 and "bit-exact" in stdout, err


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_output_that_is_a_file(user_dir, capsys, kind):
    target = user_dir / "calib.npz" if kind == "file" else user_dir / "calib.npz" / "out"
    before = tree_digest(user_dir)
    rc, _, err = main(capsys, user_dir / "mnist_cnn.onnx", "-o", target, "--quiet")
    assert_one_error(rc, err, "is a file")
    assert tree_digest(user_dir) == before


def test_output_in_a_read_only_place(user_dir, capsys):
    if os.geteuid() == 0:
        target = Path("/proc/mcucompile_out")  # root writes anywhere but in /proc
    else:
        ro = user_dir / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target = ro / "out"
    rc, _, err = main(capsys, user_dir / "mnist_cnn.onnx", "-o", target, "--quiet", "--board", "host")
    assert_one_error(rc, err, "output folder")


def test_output_folder_mode_is_the_users_usual(user_dir, capsys):
    old = os.umask(0o022)
    try:
        assert main(capsys, user_dir / "mnist_cnn.onnx", "-o", user_dir / "out", "--quiet", "--board", "host")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((user_dir / "out").stat().st_mode) == 0o755


def test_a_failed_write_leaves_the_earlier_output_whole(user_dir, capsys, monkeypatch):
    out = user_dir / "out"
    args = (user_dir / "mnist_cnn.onnx", "-o", out, "--quiet", "--board", "host")
    assert main(capsys, *args)[0] == 0
    before = tree_digest(out)
    calls = {"n": 0}
    real = Path.write_bytes

    def failing_write(self, data):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    rc, _, err = main(capsys, *args)
    assert_one_error(rc, err, "No space left on device")
    assert tree_digest(out) == before
    assert sorted(p.name for p in user_dir.iterdir()) == ["calib.npz", "mnist_cnn.onnx", "out"]


# --- no traceback, ever ------------------------------------------------------------------------------

def test_internal_error_is_reported_as_a_bug_with_a_log(capsys, monkeypatch, tmp_path):
    import mcucompile.api

    def broken(*a, **k):
        raise ZeroDivisionError("deliberate")

    monkeypatch.setattr(mcucompile.api, "compile_model", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    rc, _, err = main(capsys, MNIST, "-o", tmp_path / "out")
    assert rc == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcucompile: internal error: ZeroDivisionError: deliberate")
    assert "this is a bug" in lines[0]
    log = Path(lines[0].rsplit(" in ", 1)[1].rstrip(")"))
    assert log.is_file() and "Traceback" in log.read_text() and "deliberate" in log.read_text()
    assert not (tmp_path / "out").exists()


BAD_OPTIONS = [
    (("--sram-limit", "0"), "--sram-limit"),
    (("--sram-limit", "-100"), "--sram-limit"),
    (("--max-patch-overhead", "-1"), "--max-patch-overhead"),
    (("--max-patch-overhead", "nan"), "--max-patch-overhead"),
    (("--max-patch-overhead", "inf"), "--max-patch-overhead"),
    (("--calib-samples", "0"), "--calib-samples"),
    (("--name", ""), "C identifier"),
    (("--name", "9lives"), "C identifier"),
    (("--name", "my-model"), "C identifier"),
    (("--patches", "0", "--split", "2"), "--patches"),
    (("--patches", "3"), "go together"),
    (("--input-shape", "x=1,28,28,1"), "not an input of the model"),
    (("--input-shape", "input=1,28,0,1"), "at least 1"),
    (("--input-shape", "input=2,28,28,1"), "batch dimension must be 1"),
    (("--input-shape", "input=1,-28,28,1"), "at least 1"),
    (("--input-shape", "input=1,99999999,28,1"), "cannot fit a microcontroller"),
    (("--input-shape", "input=1,a,28,1"), "NAME=D0,D1"),
    (("--optimize", "fastest"), "--optimize"),
    (("--board", "arduino-uno"), "unknown board"),
    (("--no-such-flag",), "unrecognized arguments"),
]


@pytest.mark.parametrize("extra,fragment", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_compile_options(capsys, tmp_path, extra, fragment):
    rc, _, err = main(capsys, MNIST, "-o", tmp_path / "out", "--quiet", *extra)
    assert_one_error(rc, err, fragment)
    assert not (tmp_path / "out").exists()


BAD_VERIFY = [
    (("-n", "0"), "-n"),
    (("-n", "-3"), "-n"),
    (("--scale", "nan"), "--scale"),
    (("--timeout", "0"), "--timeout"),
    (("--no-upload",), "--no-upload goes with --port"),
    (("--reference", "litert"), "does not apply"),
]


@pytest.mark.parametrize("extra,fragment", BAD_VERIFY, ids=[" ".join(a) for a, _ in BAD_VERIFY])
def test_bad_verify_options(capsys, extra, fragment):
    rc, _, err = main(capsys, "verify", MNIST, "--calib", MNIST_CALIB, *extra)
    assert_one_error(rc, err, fragment)


def test_verify_data_of_the_wrong_shape(capsys, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((4, 3, 28, 28), np.float32))
    rc, _, err = main(capsys, "verify", MNIST, "--calib", MNIST_CALIB, "--data", tmp_path / "bad.npy")
    assert_one_error(rc, err, "test data", "[4, 3, 28, 28]", "[1, 28, 28, 1]")


@pytest.mark.parametrize("content", [b"hello, these are my numbers: 1 2 3\n", b"\x89PNG\r\n\x1a\n" + bytes(64)])
def test_calibration_file_that_is_not_numpy(capsys, tmp_path, content):
    p = tmp_path / "calib.npy"
    p.write_bytes(content)
    rc, _, err = main(capsys, MNIST, "--calib", p, "-o", tmp_path / "out")
    line = assert_one_error(rc, err, "is not a numpy .npy/.npz file")
    assert "pickle" not in line


def test_bench_on_host_says_what_to_use(capsys):
    rc, _, err = main(capsys, "bench", MNIST, "--board", "host")
    assert_one_error(rc, err, "qemu-m4")
    assert "'host' is a real board" not in err


def test_no_fit_hint_names_only_what_applies(capsys, tmp_path):
    rc, _, err = main(capsys, MNIST, "--calib", MNIST_CALIB, "--sram-limit", "1000", "-o", tmp_path / "o")
    line = assert_one_error(rc, err, "does not fit", "--sram-limit")
    assert "drop --no-patch" not in line
    rc, _, err = main(capsys, MNIST, "--calib", MNIST_CALIB, "--sram-limit", "1000", "--no-patch", "-o", tmp_path / "o")
    assert "drop --no-patch" in assert_one_error(rc, err, "does not fit")


def test_python_api_refuses_what_the_cli_refuses():
    from mcucompile.api import CompileOptions, PatchOptions

    for bad in (dict(sram_limit=0), dict(name=""), dict(calib_samples=0), dict(patch="off")):
        with pytest.raises(UserError):
            CompileOptions(**bad)
    for bad in (dict(max_overhead=float("nan")), dict(optimize="fast"), dict(mode="forced", split=3), dict(split=0)):
        with pytest.raises(UserError):
            PatchOptions(**bad)


# --- verify: warnings users need -----------------------------------------------------------------------

def test_verify_warns_about_synthetic_calibration(capsys):
    rc, _, err = main(capsys, "verify", MNIST, "-n", "2")
    assert rc == 0 and "warning: no --calib data given" in err


def test_verify_warns_when_test_data_is_outside_the_calibrated_range(capsys):
    rc, _, err = main(capsys, "verify", MNIST, "--calib", MNIST_CALIB, "--data", MNIST_TEST, "-n", "20")
    assert "outside the input's int8 range" in err and "--scale" in err
    rc, _, err = main(capsys, "verify", MNIST, "--calib", MNIST_CALIB, "--data", MNIST_TEST, "-n", "20",
                      "--scale", 1 / 255)
    assert rc == 0 and "outside the input's int8 range" not in err


# --- references are witnesses ----------------------------------------------------------------------------

def test_compile_of_a_tflite_never_needs_tflite_micro(capsys, tmp_path, monkeypatch):
    import mcucompile.reference.tflite_refs as refs

    monkeypatch.setattr(refs, "ARENA_PROBE_SIZES", (1024,))
    monkeypatch.setattr(refs.probe_tflm_arena, "__defaults__", (120.0, (1024,)))
    from mcucompile.api import CompileOptions, compile_model

    compiled = compile_model(KWS_TFLITE, CompileOptions(board="host", progress=False))
    assert compiled.report.tflm.arena_bytes is None
    assert "more than a 1,024 B arena" in compiled.report.tflm.note
    assert any("TFLite Micro's arena size not recorded" in n for n in compiled.warnings)


def test_a_reference_that_fails_is_reported_and_the_others_run(monkeypatch):
    import mcucompile.reference.tflite_refs as refs
    from mcucompile.api import CompileOptions, compile_model, verify_host

    class Refusing(refs.LiteRtReference):
        def __init__(self, *a, **k):
            raise ValueError("quantized_dimension must be in range [0, 1)")

    monkeypatch.setattr(refs, "LiteRtReference", Refusing)
    compiled = compile_model(KWS_TFLITE, CompileOptions(board="host", progress=False))
    res = verify_host(compiled, compiled.calib[:3])
    by = {r.name: r for r in res.references}
    assert by["litert"].status == "failed" and "quantized_dimension" in by["litert"].detail
    assert by["tflite-micro"].status == "bit-exact" and res.passed
    assert "LiteRT (reference kernels)" in res.format() and "FAILED to run" in res.format()
    only = verify_host(compiled, compiled.calib[:2], references=("tflite-micro",))
    assert [r.name for r in only.references] == ["tflite-micro"]
    none = verify_host(compiled, compiled.calib[:2], references=("none",))
    assert none.references == () and none.bit_exact


def test_tflite_accuracy_is_labelled_as_tflite_micro(capsys, tmp_path):
    from mcucompile.api import CompileOptions, compile_model, verify_host

    compiled = compile_model(KWS_TFLITE, CompileOptions(board="host", progress=False))
    labels = np.arange(4) % 12
    res = verify_host(compiled, compiled.calib[:4], labels)
    assert res.reference_for_accuracy == "tflite-micro" and res.accuracy_float is None
    assert "TFLite Micro" in res.format() and "float" not in res.format().split("accuracy")[-1]


def test_verify_of_a_qdq_model_with_labels(tmp_path):
    from mcucompile.api import CompileOptions, compile_model, verify_host

    qdq = SHARED_MODELS / "kws_dscnn_int8_qdq.onnx"
    compiled = compile_model(qdq, CompileOptions(board="host", progress=False))
    res = verify_host(compiled, compiled.calib[:3], np.array([0, 1, 2]))
    assert res.bit_exact and res.accuracy_int8 is not None
    assert res.reference_for_accuracy == "onnxruntime-qdq"
    # onnxruntime's QDQ execution is compared, not required byte for byte: agreement, SQNR, bytes within 1 LSB
    (out,) = res.outputs
    assert out.reference == "onnxruntime-qdq" and out.top1_agreement == 1.0 and out.within_1lsb >= 0.9
    assert out.sqnr_db > 30 and "within 1 LSB" in res.format()
    assert next(r for r in res.references if r.name == "onnxruntime-qdq").status == "compared"


def test_plot_never_overwrites_a_file_that_is_not_a_png(user_dir, capsys):
    notes = user_dir / "notes.png"
    notes.write_text("not an image")
    for target, fragment in ((user_dir / "mnist_cnn.onnx", ".png file name"), (notes, "not a PNG image")):
        before = target.read_bytes()
        rc, _, err = main(capsys, user_dir / "mnist_cnn.onnx", "-o", user_dir / "out", "--quiet", "--plot", target)
        assert_one_error(rc, err, fragment)
        assert target.read_bytes() == before and not (user_dir / "out").exists()


def test_bias_with_the_filters_quantized_dimension_as_in_person_detect(tmp_path, capsys):
    """TFLite Micro's own person_detect.tflite gives its 1-D conv biases the filter's quantized_dimension (3):
    TFLite Micro runs it, LiteRT refuses it. We compile it, agree with TFLite Micro byte for byte and report
    LiteRT's refusal in one line (reproduced on an MLPerf model, as person_detect is not on this machine)."""
    from fuzz.mutate import tflite_pack, tflite_unpack

    model = tflite_unpack(KWS_TFLITE.read_bytes())
    sg = model.subgraphs[0]
    changed = 0
    for op in sg.operators:
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            q = sg.tensors[op.inputs[2]].quantization
            if q is not None and q.scale is not None and len(q.scale) > 1:
                q.quantizedDimension = 3
                changed += 1
    assert changed
    path = tmp_path / "kws_bias_qdim3.tflite"
    path.write_bytes(tflite_pack(model))
    rc, out, err = main(capsys, "verify", path, "-n", "3")
    assert rc == 0, err
    assert "C vs TFLite Micro               bit-exact" in out
    assert "LiteRT (reference kernels) FAILED to run" in out and "quantized_dimension" in out
