"""The ONNX backend node tests for the ops we support, through our float IR path.

No case may give a wrong answer or crash: each passes or is refused with a clear UserError. The list
of passing cases is recorded in tests/data/onnx_node_tests_passing.txt; a case that passed before and
fails now is a regression. Regenerate the list with ``python tests/onnx_node_suite.py --record``.
"""

from __future__ import annotations

import collections
import warnings
from pathlib import Path

from onnx_node_suite import node_cases, run_case

RECORD = Path(__file__).parent / "data" / "onnx_node_tests_passing.txt"


def test_onnx_backend_node_tests():
    warnings.filterwarnings("ignore")
    results = {c.name: run_case(c) for c in node_cases()}
    counts = collections.Counter(status for status, _ in results.values())
    print(f"\nONNX node tests over supported ops: {dict(counts)}")
    failed = {k: why for k, (status, why) in results.items() if status == "fail"}
    assert not failed, f"wrong answers or crashes: {failed}"
    recorded = set(RECORD.read_text().split())
    passing = {k for k, (status, _) in results.items() if status == "pass"}
    assert recorded - passing == set(), f"regressions: {sorted(recorded - passing)}"
    assert len(passing) >= 120
