"""Run mutants through the command line and check the contract, in worker processes that may die.

Each worker is a fresh Python process that compiles its jobs one by one by calling
``mcucompile.cli.main`` in-process (fast: no interpreter start per mutant) and appends one JSON line per
job to a results file, after a ``start`` line; so when a worker dies (a segfault in a native reader, the
memory limit, a hang past the timeout) the parent knows which job did it, records that job as a crash
and starts a new worker on the rest.

The contract checked for every mutant:
  * exit 0, or exit 2 with exactly one stderr line (warnings aside) starting ``mcucompile: error:``;
    anything else (a traceback, exit 3 "internal error", another code) is a failure;
  * no partial output: after exit 2 the ``-o`` folder does not exist (nor a temporary sibling); after
    exit 0 it holds report.json and lib/;
  * a mutant that compiles is built for the host under ``-fsanitize=address,undefined`` and run on a few
    inputs (two calibration samples and the all-minimum / all-maximum int8 inputs): no sanitizer finding,
    and the C output equals the simulator's byte for byte.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from .mutate import Mutant

OK, USER_ERROR = "ok", "user-error"
FAILURES = ("traceback", "internal-error", "bad-exit", "bad-message", "partial-output", "sanitizer", "mismatch",
            "verify-crash", "crash", "timeout")
# compile options for every mutant: the host board (no SRAM limit worth patching for), few synthetic
# calibration samples (speed), a fixed library name
COMPILE_ARGS = ["--board", "host", "--quiet", "--calib-samples", "4", "--name", "m"]
MEMORY_LIMIT = 6 << 30  # address space of the compile step: a mutant asking for more is a bug to report


@dataclass(frozen=True)
class Result:
    """What one mutant did: its class (``ok``, ``user-error`` or one of FAILURES) and the evidence."""

    id: str
    cls: str
    rc: int | None
    message: str = ""
    detail: str = ""
    seconds: float = 0.0
    what: str = ""

    @property
    def failed(self) -> bool:
        return self.cls in FAILURES


@dataclass
class Summary:
    """Counts by class, and error messages grouped by their first words."""

    results: list[Result] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.cls] = out.get(r.cls, 0) + 1
        return out

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    def error_kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            if r.cls == USER_ERROR:
                k = message_kind(r.message)
                out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def table(self, top: int = 40) -> str:
        c = self.counts()
        n = len(self.results)
        lines = [f"mutants {n}:  exit 0 (compiled, sanitizer-clean, bit-exact) {c.get(OK, 0)}  |  "
                 f"exit 2 (one-line error) {c.get(USER_ERROR, 0)}  |  failures {len(self.failures)}"]
        for cls in FAILURES:
            if c.get(cls):
                lines.append(f"  FAIL {cls:<15} {c[cls]}")
        lines.append("exit 2 by message (first words; names and numbers elided):")
        kinds = list(self.error_kinds().items())
        for k, v in kinds[:top]:
            lines.append(f"  {v:>5}  {k}")
        if len(kinds) > top:
            lines.append(f"  {sum(v for _, v in kinds[top:]):>5}  ({len(kinds) - top} other kinds)")
        for r in self.failures[:30]:
            lines.append(f"FAIL {r.cls} {r.id} [{r.what}]: {(r.message or r.detail).splitlines()[0][:300] if (r.message or r.detail) else ''}")
        return "\n".join(lines)


def message_kind(msg: str, words: int = 6) -> str:
    """The first words of an error message, with quoted names, paths and numbers elided."""
    m = msg.removeprefix("mcucompile: error: ")
    m = re.sub(r"'[^']*'", "'…'", m)
    m = re.sub(r"\S*/\S+", "PATH", m)
    m = re.sub(r"\[[^\]]*\]", "[…]", m)
    m = re.sub(r"-?\d[\d,.e+-]*", "N", m)
    return " ".join(m.split()[:words])


# ---------------------------------------------------------------------------------------------- worker side

def _check_cli(rc, err: str, out_dir: Path) -> tuple[str, str]:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    partial = [p.name for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}.")]
    if rc == 0:
        if not (out_dir / "report.json").is_file() or not (out_dir / "lib").is_dir() or partial:
            return "partial-output", f"exit 0 but {out_dir} lacks report.json or lib/ (or left {partial})"
        return OK, ""
    if rc == 2:
        if len(lines) != 1 or not lines[0].startswith("mcucompile: error: "):
            return "bad-message", err[-2000:]
        if out_dir.exists() or partial:
            return "partial-output", f"exit 2 but {out_dir} exists (or left {partial})"
        return USER_ERROR, lines[0]
    if rc == 3:
        return "internal-error", err[-2000:]
    return "bad-exit", f"exit {rc}: {err[-2000:]}"


def _set_memory_limit(limit: int | None) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard if limit is None else min(limit, hard), hard))


def sanitized_run(model: Path, build_dir: Path) -> tuple[str, str]:
    """Compile ``model`` with the API (same options as the CLI run), build its C for the host under
    ASan/UBSan, run it on two calibration samples plus all-minimum and all-maximum inputs, compare with
    the simulator byte for byte."""
    import numpy as np

    from mcucompile.api import (CompileOptions, host_runner_source, library_dir, quantize_input, simulate,
                                write_library)
    from mcucompile.targets.host import build_host, run_host

    compiled = compile_with_api(model)
    compiled = _on_host(compiled)
    x_q = quantize_input(compiled, compiled.calib[:2])
    lo = np.full_like(x_q[:1], -128)
    hi = np.full_like(x_q[:1], 127)
    x_q = np.concatenate([x_q, lo, hi])
    out = write_library(compiled, build_dir / "out")
    try:
        exe = build_host(library_dir(out, compiled), host_runner_source(compiled), build_dir / "build", sanitize=True)
        sizes = [compiled.graph.tensors[o].size for o in compiled.graph.outputs]
        c_outs = run_host(exe, [x_q], sizes)
    except RuntimeError as e:
        return "sanitizer", str(e)[-3000:]
    sim = simulate(compiled, x_q)
    diff = int(sum(np.count_nonzero(a != b) for a, b in zip(c_outs, sim)))
    _ = CompileOptions
    if diff:
        return "mismatch", f"C differs from the simulator in {diff} bytes"
    return OK, ""


def compile_with_api(model: Path):
    from mcucompile.api import CompileOptions, compile_model

    return compile_model(model, CompileOptions(board="host", calib_samples=4, name="m", progress=False))


def _on_host(compiled):
    import dataclasses

    from mcucompile.boards import get_board

    return compiled if compiled.board.name == "host" else dataclasses.replace(compiled, board=get_board("host"))


def run_one(job: dict, work: Path, verify: bool = True) -> Result:
    """Compile one mutant through ``cli.main`` in this process, check the contract, then (exit 0) run it
    under the sanitizers."""
    from mcucompile import cli

    t0 = time.time()
    if job["path"] == "::abort::":  # lets the tests check that a dying worker is survived
        os.abort()
    if job["path"] == "::hang::":  # ... and a hanging one
        time.sleep(3600)
    out_dir = work / f"out_{job['n']}"
    err, out = io.StringIO(), io.StringIO()
    _set_memory_limit(MEMORY_LIMIT)
    try:
        with redirect_stderr(err), redirect_stdout(out):
            rc = cli.main([job["path"], "-o", str(out_dir), *COMPILE_ARGS])
    except SystemExit as e:  # argparse
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - the fuzzer's job: any escape from main is a finding
        tb = traceback.format_exc()
        return Result(job["id"], "traceback", None, f"{type(e).__name__}: {str(e)[:300]}", tb[-3000:],
                      time.time() - t0, job["what"])
    finally:
        _set_memory_limit(None)
    cls, msg = _check_cli(rc, err.getvalue(), out_dir)
    if cls == OK and verify:
        try:
            cls, detail = sanitized_run(Path(job["path"]), work / f"san_{job['n']}")
        except BaseException as e:  # noqa: BLE001 - a crash while verifying a compiled mutant is a finding
            cls, detail = "verify-crash", f"{type(e).__name__}: {str(e)[:300]}\n{traceback.format_exc()[-3000:]}"
        return Result(job["id"], cls, rc, "", detail, time.time() - t0, job["what"])
    return Result(job["id"], cls, rc, msg if cls == USER_ERROR else "", "" if cls == USER_ERROR else msg,
                  time.time() - t0, job["what"])


def worker_main(jobs_file: str, results_file: str, verify: str = "1") -> None:
    """Entry point of a worker process: run the jobs in order, one JSON line each, flushed."""
    import shutil

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    jobs = json.loads(Path(jobs_file).read_text())
    with open(results_file, "a") as f:
        for job in jobs:
            f.write(json.dumps({"start": job["id"]}) + "\n")
            f.flush()
            work = Path(job["work"])
            work.mkdir(parents=True, exist_ok=True)
            res = run_one(job, work, verify == "1")
            f.write(json.dumps(res.__dict__) + "\n")
            f.flush()
            shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- parent side

def _spawn(jobs: list[dict], tag: str, workdir: Path, verify: bool) -> tuple[subprocess.Popen, Path, Path]:
    jobs_file = workdir / f"jobs_{tag}.json"
    results = workdir / f"results_{tag}.jsonl"
    jobs_file.write_text(json.dumps(jobs))
    results.write_text("")
    tests_dir = str(Path(__file__).resolve().parents[1])
    code = (f"import sys; sys.path.insert(0, {tests_dir!r}); from fuzz.runner import worker_main; "
            f"worker_main({str(jobs_file)!r}, {str(results)!r}, {'1' if verify else '0'!r})")
    errf = open(workdir / f"stderr_{tag}.txt", "w")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=errf,
                            stdin=subprocess.DEVNULL)
    errf.close()
    return proc, results, workdir / f"stderr_{tag}.txt"


def _read(results: Path) -> tuple[list[Result], tuple[str, float] | None]:
    done, started = [], None
    for line in results.read_text().splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        if "start" in d:
            started = (d["start"], time.time())
        else:
            done.append(Result(**d))
            started = None
    return done, started


def run_mutants(mutants: list[Mutant], workdir: Path, workers: int = 1, timeout: float = 180.0,
                verify: bool = True, progress=None) -> Summary:
    """Run every mutant in ``workers`` worker processes; a job that kills or hangs its worker is recorded
    (``crash`` / ``timeout``) and the worker is replaced for the remaining jobs."""
    workdir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for n, m in enumerate(mutants):
        path = workdir / f"m{n}{m.suffix}"
        path.write_bytes(m.data)
        jobs.append({"n": n, "id": m.id, "path": str(path), "what": f"{m.kind}: {m.what}", "work": str(workdir / f"w{n}")})
    return run_jobs(jobs, workdir, workers, timeout, verify, progress)


def run_jobs(jobs: list[dict], workdir: Path, workers: int = 1, timeout: float = 180.0, verify: bool = True,
             progress=None) -> Summary:
    """Run prepared ``jobs`` (dicts: n, id, path, what, work) as run_mutants does."""
    workdir.mkdir(parents=True, exist_ok=True)
    queues = [jobs[i::workers] for i in range(workers)]
    summary = Summary()
    active = []  # [proc, results, stderr, remaining jobs, tag, (id, t_started) seen]
    spawned = 0
    for q in queues:
        if q:
            proc, res, err = _spawn(q, str(spawned), workdir, verify)
            active.append([proc, res, err, q, spawned, None, 0])
            spawned += 1
    while active:
        time.sleep(0.2)
        for entry in list(active):
            proc, res, err, q, tag, seen, reported = entry
            done, started = _read(res)
            for r in done[reported:]:
                summary.results.append(r)
                if progress:
                    progress(r, len(summary.results), len(jobs))
            entry[6] = len(done)
            if started is not None and (seen is None or seen[0] != started[0]):
                entry[5] = seen = started  # first time we see this job started: its clock starts now
            hung = started is not None and seen is not None and time.time() - seen[1] > timeout
            rc = proc.poll()
            if rc is None and not hung:
                continue
            if hung:
                proc.kill()
                proc.wait()
            active.remove(entry)
            left = q[len(done):]
            if not left:
                continue
            victim = left[0]
            tail = err.read_text()[-1500:] if err.exists() else ""
            cls = "timeout" if hung else "crash"
            r = Result(victim["id"], cls, proc.returncode, f"worker {'killed after ' + str(timeout) + ' s' if hung else 'died with ' + str(proc.returncode)}",
                       tail, 0.0, victim["what"])
            summary.results.append(r)
            if progress:
                progress(r, len(summary.results), len(jobs))
            rest = left[1:]
            if rest:
                proc, res, err = _spawn(rest, str(spawned), workdir, verify)
                active.append([proc, res, err, rest, spawned, None, 0])
                spawned += 1
    order = {j["id"]: k for k, j in enumerate(jobs)}
    summary.results.sort(key=lambda r: order.get(r.id, 0))
    return summary
