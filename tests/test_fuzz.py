"""The fuzzer in make test: a few hundred deterministic mutants of ONNX and TFLite seed models.

Every mutant must give exit 0 or exit 2 with one ``mcucompile: error:`` line, never a traceback or an
internal error, never a partial output folder; every mutant that compiles must run under ASan/UBSan
bit-exact with the simulator. ``make fuzz`` runs many more (tools/fuzz.py). Set MCUCOMPILE_FUZZ_COUNT
to change the count here.
"""

from __future__ import annotations

import os

import pytest

from fuzz.mutate import by_id, mutants, tflite_pack, tflite_unpack
from fuzz.runner import Result, Summary, message_kind, run_jobs, run_mutants
from fuzz.seeds import SHARED_MODELS, all_seeds, small_onnx_seeds

FUZZ_COUNT = int(os.environ.get("MCUCOMPILE_FUZZ_COUNT", "500"))


@pytest.fixture(scope="module")
def seeds():
    s = all_seeds(include_large=False)
    assert any(x.fmt == "tflite" for x in s) and any(x.fmt == "onnx" for x in s)
    return s


def test_mutants_are_deterministic_and_reproducible_by_id(seeds):
    first = list(mutants(seeds, 40))
    again = list(mutants(seeds, 40))
    assert [m.data for m in first] == [m.data for m in again]
    assert all(by_id(seeds, m.id).data == m.data for m in first)
    assert len({m.data for m in first}) == len(first), "two mutants are identical"
    kinds = {m.kind for m in first}
    assert kinds == {"bytes", "structure"}
    assert {m.fmt for m in first} == {"onnx", "tflite"}


def test_tflite_object_api_round_trip_keeps_the_model():
    """The TFLite structural mutator re-serializes with the flatbuffer object API: unmutated, the model
    must read back the same (else every TFLite mutant would test the serializer, not the front end)."""
    path = SHARED_MODELS / "kws_dscnn_int8.tflite"
    data = path.read_bytes()
    again = tflite_pack(tflite_unpack(data))
    a, b = tflite_unpack(data), tflite_unpack(again)
    assert len(a.subgraphs[0].tensors) == len(b.subgraphs[0].tensors)
    assert [list(t.shape) for t in a.subgraphs[0].tensors] == [list(t.shape) for t in b.subgraphs[0].tensors]
    assert [bytes(x.data) if x.data is not None else b"" for x in a.buffers] == \
           [bytes(x.data) if x.data is not None else b"" for x in b.buffers]


def test_seeds_compile_and_run_clean(tmp_path, seeds):
    """The seeds themselves compile and run sanitizer-clean (a mutant's failure then is the mutation's)."""
    picked = small_onnx_seeds() + [s for s in seeds if s.name in
                                   ("mnist_cnn", "kws_dscnn_int8", "kws_dscnn_int8_qdq", "resnet8_int8", "hand_mean_keep_0")]
    from fuzz.mutate import Mutant

    ms = [Mutant(f"{s.name}#seed", s.fmt, s.name, "none", "seed", s.data) for s in picked]
    summary = run_mutants(ms, tmp_path, workers=1)
    assert summary.counts() == {"ok": len(ms)}, summary.table()


def test_runner_survives_a_worker_that_dies(tmp_path):
    """A job that kills its worker (as a segfault in a native reader would) is recorded as a crash and
    the jobs after it still run."""
    seed = small_onnx_seeds()[0]
    good = tmp_path / "good.onnx"
    good.write_bytes(seed.data)
    jobs = [{"n": 0, "id": "abort#0", "path": "::abort::", "what": "abort", "work": str(tmp_path / "w0")},
            {"n": 1, "id": "good#0", "path": str(good), "what": "seed", "work": str(tmp_path / "w1")}]
    summary = run_jobs(jobs, tmp_path / "run", verify=False)
    assert [(r.id, r.cls) for r in summary.results] == [("abort#0", "crash"), ("good#0", "ok")]
    jobs[0] = {**jobs[0], "id": "hang#0", "path": "::hang::"}
    summary = run_jobs(jobs, tmp_path / "run2", verify=False, timeout=5)
    assert [(r.id, r.cls) for r in summary.results] == [("hang#0", "timeout"), ("good#0", "ok")]


def test_summary_groups_messages_by_first_words():
    s = Summary([Result("a#0", "user-error", 2, "mcucompile: error: tensor 'x' has type int64; only int8"),
                 Result("a#1", "user-error", 2, "mcucompile: error: tensor 'y' has type int16; only int8"),
                 Result("a#2", "traceback", None, "KeyError: 'z'")])
    assert s.error_kinds() == {"tensor '…' has type intN; only": 2}
    assert len(s.failures) == 1 and "FAIL traceback" in s.table()
    assert message_kind("mcucompile: error: /a/b.onnx is not a valid ONNX model") == "PATH is not a valid ONNX"


def test_fuzz_mutants_keep_the_contract(tmp_path, seeds):
    summary = run_mutants(list(mutants(seeds, FUZZ_COUNT)), tmp_path, workers=1)
    print("\n" + summary.table())
    assert len(summary.results) == FUZZ_COUNT
    assert not summary.failures, summary.table()
    counts = summary.counts()
    # the mix must exercise both paths: mutants that compile (sanitizer runs) and mutants refused
    assert counts.get("ok", 0) >= FUZZ_COUNT // 10 and counts.get("user-error", 0) >= FUZZ_COUNT // 4, counts
