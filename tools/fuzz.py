#!/usr/bin/env python
"""make fuzz: compile N deterministic mutants of the seed models and print what they did.

    python tools/fuzz.py [--count 2000] [--seed 0] [--workers 2] [--only ID ...] [--no-verify] [--json FILE]

Exit status 1 when any mutant breaks the contract (see tests/fuzz/runner.py): a traceback or internal
error, an exit code other than 0 and 2, an error that is not one line, a partial output folder, or a
compiled mutant whose C fails under ASan/UBSan or differs from the simulator. Reproduce one failure with
``--only ID`` (the id names the seed and the mutant index).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz.mutate import by_id, mutants  # noqa: E402
from fuzz.runner import run_mutants  # noqa: E402
from fuzz.seeds import all_seeds  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--count", type=int, default=2000, help="number of mutants (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="fuzz seed: another seed gives other mutants")
    p.add_argument("--start", type=int, default=0, help="first mutant number (to continue a run)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one mutant may take")
    p.add_argument("--only", nargs="*", metavar="ID", help="run just these mutant ids (e.g. kws_dscnn_int8#12)")
    p.add_argument("--no-verify", action="store_true", help="skip the sanitizer run of compiled mutants")
    p.add_argument("--small", action="store_true", help="leave out the largest seeds (VWW), as make test does")
    p.add_argument("--json", metavar="FILE", help="write every result to FILE")
    p.add_argument("--keep", metavar="DIR", help="keep the mutant files in DIR")
    args = p.parse_args(argv)
    if args.count < 1 or args.workers < 1:
        p.error("--count and --workers must be at least 1")
    seeds = all_seeds(include_large=not args.small)
    if args.only:
        ms = [by_id(seeds, i, args.seed) for i in args.only]
    else:
        ms = list(mutants(seeds, args.count, args.seed, args.start))
    print(f"{len(ms)} mutants of {len(seeds)} seeds "
          f"({sum(s.fmt == 'onnx' for s in seeds)} ONNX, {sum(s.fmt == 'tflite' for s in seeds)} TFLite), "
          f"fuzz seed {args.seed}, {args.workers} workers", flush=True)
    t0 = time.time()

    def progress(r, done, total):
        if r.failed or done % 100 == 0 or done == total:
            mark = f"FAIL {r.cls} {r.id} [{r.what}]" if r.failed else ""
            print(f"[{done}/{total} {time.time() - t0:.0f}s] {mark}", flush=True)

    with tempfile.TemporaryDirectory(prefix="mcucompile-fuzz-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        summary = run_mutants(ms, work, args.workers, args.timeout, not args.no_verify, progress)
    print(f"\n{summary.table()}\n({time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in summary.results], indent=1))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
