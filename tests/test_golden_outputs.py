"""Structural work must not move an output byte: the reference model set's int8 outputs (simulator, and
the C built for the host on two of the samples) equal what tools/record_golden.py recorded."""

from __future__ import annotations

import numpy as np
import pytest

from golden_models import GOLDEN_FILE, case_inputs, compile_case, golden_cases

from mcucompile.api import host_runner_source, library_dir, simulate, write_library
from mcucompile.targets.host import build_host, run_host

CASES = golden_cases()


@pytest.fixture(scope="module")
def recorded():
    with np.load(GOLDEN_FILE) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_outputs_equal_the_recorded_ones(case, recorded, tmp_path):
    compiled = compile_case(case)
    x_q = case_inputs(compiled)
    sim = simulate(compiled, x_q)
    for k, out in enumerate(sim):
        want = recorded[f"{case.name}/{k}"]
        assert out.shape == want.shape, (case.name, out.shape, want.shape)
        diff = int(np.count_nonzero(out != want))
        assert diff == 0, f"{case.name} output {k}: {diff} of {out.size} bytes differ from the recorded outputs"
    out_dir = write_library(compiled, tmp_path / "lib")
    exe = build_host(library_dir(out_dir, compiled), host_runner_source(compiled), tmp_path / "build")
    sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
    c_outs = run_host(exe, [x_q[:2]], sizes)
    for k, c in enumerate(c_outs):
        assert np.array_equal(c, recorded[f"{case.name}/{k}"][:2]), f"{case.name}: the C differs from the recording"
