#!/usr/bin/env python
"""Record the int8 outputs of the reference model set, for tests/test_golden_outputs.py.

    python tools/record_golden.py            # writes tests/data/golden/outputs.npz

A structural change (the schedule, the op seam, the kernels' calling convention) must not change a
single output byte; the test compares against what this script recorded before such a change. Re-record
only when a change is meant to change outputs, and say so in the commit message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from golden_models import GOLDEN_FILE, golden_cases, run_case  # noqa: E402


def main() -> int:
    arrays = {}
    for case in golden_cases():
        outs = run_case(case)
        for k, o in enumerate(outs):
            arrays[f"{case.name}/{k}"] = o
        print(f"{case.name:<28} {len(outs)} output(s), {sum(o.size for o in outs):,} bytes", flush=True)
    GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDEN_FILE, **arrays)
    print(f"wrote {GOLDEN_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
