"""The C kernels keep one calling convention, and their header says what their code does.

Checked mechanically from ``runtime_c/include/mcunn.h`` and ``runtime_c/src/*.c``:

- every kernel ``mcu_<op>[_<variant>]_s8`` (not the ``_get_buffer_size_s8`` helpers) returns
  ``mcu_status`` and takes ``const mcu_context *ctx`` first, then its op params struct, then its quant
  params struct (each where it has one), then (dims, data) pairs (``x_dims`` right before ``x``; a dims
  may stand alone, e.g. a pooling window), output dims and output last; no loose scalars;
- every public function has a Doxygen block with one ``@param`` per argument, in order, and a ``@return``;
  a kernel's ``@return`` names exactly the ``MCU_*`` statuses its definition can return (following
  ``return helper(...)`` into static helpers);
- a kernel that reads ``ctx->`` has its ``mcu_<op>_get_buffer_size_s8``.

Run as a script on any header to list its problems, e.g. an older one:
``git show HEAD~5:runtime_c/include/mcunn.h > /tmp/old.h && python tests/test_c_api.py /tmp/old.h``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "runtime_c" / "include" / "mcunn.h"
SOURCES = sorted((ROOT / "runtime_c" / "src").glob("*.c"))


@dataclass(frozen=True)
class Param:
    type: str  # normalised: single spaces, "*" attached as " *"
    name: str


@dataclass(frozen=True)
class Decl:
    ret: str
    name: str
    params: tuple[Param, ...]
    doc: str | None  # the Doxygen block right before the declaration


def _norm_type(t: str) -> str:
    t = re.sub(r"\s*\*\s*", " *", t.strip())
    return re.sub(r"\s+", " ", t).strip()


def _params(text: str) -> tuple[Param, ...]:
    out = []
    for part in text.split(","):
        part = part.strip()
        array = bool(re.search(r"\[[^\]]*\]\s*$", part))  # an array parameter is a pointer
        part = re.sub(r"\[[^\]]*\]\s*$", "", part)
        if not part or part == "void":
            continue
        m = re.match(r"(.*?)([A-Za-z_]\w*)\s*$", part, re.DOTALL)
        assert m, part
        out.append(Param(_norm_type(m.group(1) + (" *" if array else "")), m.group(2)))
    return tuple(out)


_DECL = re.compile(r"^[ \t]*((?:const\s+)?[A-Za-z_]\w*(?:\s*\*)*)\s+(mcu_\w+)\s*\(([^)]*)\)\s*;", re.MULTILINE)
_DOC_BEFORE = re.compile(r"/\*\*((?:(?!\*/).)*)\*/\s*$", re.DOTALL)


def parse_header(text: str) -> list[Decl]:
    """Every function declared in the header, with the Doxygen block directly before it."""
    decls = []
    for m in _DECL.finditer(text):
        doc = _DOC_BEFORE.search(text[:m.start()])
        decls.append(Decl(_norm_type(m.group(1)), m.group(2), _params(m.group(3)), doc.group(1) if doc else None))
    return decls


def parse_sources(texts: list[str]) -> dict[str, str]:
    """Function name -> body, for every function defined in the sources."""
    bodies: dict[str, str] = {}
    head = re.compile(r"^(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\(([^;{)]*)\)\s*\{",
                      re.MULTILINE)
    for text in texts:
        for m in head.finditer(text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            bodies[m.group(1)] = text[m.end():i - 1]
    return bodies


def returned_statuses(name: str, bodies: dict[str, str], seen: frozenset = frozenset()) -> tuple[set[str], list[str]]:
    """The MCU_* statuses function ``name`` can return, and what could not be resolved."""
    body, found, unknown = bodies[name], set(), []
    for expr in re.findall(r"\breturn\s+([^;]*);", body):
        expr = expr.strip()
        if re.fullmatch(r"MCU_[A-Z_]+", expr):
            found.add(expr)
        elif (call := re.match(r"([A-Za-z_]\w*)\s*\(", expr)) and call.group(1) in bodies and call.group(1) not in seen:
            sub, bad = returned_statuses(call.group(1), bodies, seen | {name})
            found |= sub
            unknown += bad
        else:
            unknown.append(f"{name}: cannot tell which status 'return {expr}' gives")
    return found, unknown


def _doc_params(doc: str) -> list[str]:
    return re.findall(r"@param(?:\[[^\]]*\])?\s+(\w+)", doc)


def _doc_return(doc: str) -> str | None:
    m = re.search(r"@return\b(.*?)(?=@\w|\Z)", doc, re.DOTALL)
    return m.group(1) if m else None


def is_kernel(name: str) -> bool:
    return name.endswith("_s8") and "_get_buffer_size_" not in name


def convention_problems(d: Decl) -> list[str]:
    """How kernel ``d``'s signature breaks the one argument order."""
    bad, p = [], list(d.params)
    if d.ret != "mcu_status":
        bad.append(f"{d.name}: returns {d.ret}, not mcu_status")
    if not p or p[0] != Param("const mcu_context *", "ctx"):
        bad.append(f"{d.name}: first argument is not 'const mcu_context *ctx'")
        return bad
    i = 1
    if i < len(p) and re.fullmatch(r"const mcu_\w+_params \*", p[i].type) and "quant" not in p[i].type:
        i += 1
    if i < len(p) and re.fullmatch(r"const mcu_\w*quant_params \*", p[i].type):
        i += 1
    while i < len(p):
        a = p[i]
        if a.type == "const mcu_dims *" and a.name.endswith("_dims"):
            base = a.name[:-len("_dims")]
            if i + 1 < len(p) and p[i + 1].name == base:
                data = p[i + 1]
                if not data.type.endswith("*") or "mcu_" in data.type:
                    bad.append(f"{d.name}: '{data.name}' after its dims is not a data pointer ({data.type})")
                wants_const = base != "output"
                if data.type.startswith("const ") != wants_const:
                    bad.append(f"{d.name}: '{data.name}' should be {'const ' if wants_const else 'non-const '}data")
                i += 2
            else:
                i += 1
        else:
            bad.append(f"{d.name}: argument {i} '{a.type}{a.name}' is not ctx, params, quant params or a "
                       f"(dims, data) pair in order")
            i += 1
    if len(p) < 3 or p[-2] != Param("const mcu_dims *", "output_dims") or p[-1].name != "output":
        bad.append(f"{d.name}: does not end with (output_dims, output)")
    return bad


def header_problems(header: str, sources: list[str]) -> list[str]:
    """Every way the header breaks the convention or misstates what the code returns."""
    decls = parse_header(header)
    bodies = parse_sources(sources)
    names = {d.name for d in decls}
    bad = []
    if not any(is_kernel(d.name) for d in decls):
        return ["no kernel declarations found"]
    for d in decls:
        if d.doc is None:
            bad.append(f"{d.name}: no Doxygen block")
            continue
        documented = _doc_params(d.doc)
        if documented != [a.name for a in d.params]:
            bad.append(f"{d.name}: @param {documented} != arguments {[a.name for a in d.params]}")
        ret = _doc_return(d.doc)
        if ret is None:
            bad.append(f"{d.name}: no @return")
        if not is_kernel(d.name):
            continue
        bad += convention_problems(d)
        if d.name not in bodies:
            bad.append(f"{d.name}: declared but not defined in runtime_c/src")
            continue
        code, unknown = returned_statuses(d.name, bodies)
        bad += unknown
        doc = set(re.findall(r"\bMCU_[A-Z_]+\b", ret or ""))
        if doc != code:
            bad.append(f"{d.name}: @return names {sorted(doc)}, the code returns {sorted(code)}")
        if "ctx->" in bodies[d.name]:
            helper = d.name[:-len("_s8")] + "_get_buffer_size_s8"
            if helper not in names:
                bad.append(f"{d.name}: uses caller scratch but {helper} is not declared")
    return bad


def _current() -> tuple[str, list[str]]:
    return HEADER.read_text(), [s.read_text() for s in SOURCES]


def test_header_follows_the_convention_and_states_the_truth():
    header, sources = _current()
    kernels = [d.name for d in parse_header(header) if is_kernel(d.name)]
    assert len(kernels) >= 15, kernels  # the parser sees every kernel (a regex that matched nothing passes nothing)
    assert header_problems(header, sources) == []


def test_every_kernel_is_defined_with_the_declared_arguments():
    header, sources = _current()
    bodies_src = "\n".join(sources)
    for d in parse_header(header):
        m = re.search(rf"^[\w \t\*]*\b{d.name}\s*\(([^)]*)\)\s*\{{", bodies_src, re.MULTILINE)
        assert m, f"{d.name} not defined"
        assert [a.type for a in _params(m.group(1))] == [a.type for a in d.params], d.name


def _mutate(header: str, old: str, new: str) -> str:
    assert old in header, old
    return header.replace(old, new, 1)


def test_the_check_fails_on_broken_headers():
    """Each mutation must be caught: the check is not vacuous."""
    header, sources = _current()
    indent = "\n" + " " * len("mcu_status mcu_lut_s8(")
    swapped = _mutate(header, f"mcu_lut_s8(const mcu_context *ctx,{indent}const mcu_lut_params *lut_params,",
                      f"mcu_lut_s8(const mcu_lut_params *lut_params,{indent}const mcu_context *ctx,")
    assert any("mcu_lut_s8: first argument" in p for p in header_problems(swapped, sources))
    pad = "\n" + " " * len("mcu_status mcu_lut_s8(")
    dims_then_data = f"const mcu_dims *input_dims,{pad}const int8_t *input,{pad}const mcu_dims *output_dims,"
    data_then_dims = f"const int8_t *input,{pad}const mcu_dims *input_dims,{pad}const mcu_dims *output_dims,"
    data_first = _mutate(header, dims_then_data, data_then_dims)
    assert any("is not ctx, params" in p for p in header_problems(data_first, sources))
    scalar = _mutate(header, "const mcu_softmax_params *softmax_params,", "int32_t diff_min,")
    assert any("mcu_softmax_s8: argument" in p for p in header_problems(scalar, sources))
    # the issue's own example: fully connected documenting only MCU_OK
    fc = header.index("@brief Fully connected layer")
    ret = header.index("@return", fc)
    end = header.index("*/", ret)
    lying = header[:ret] + "@return MCU_OK.\n " + header[end:]
    assert any("mcu_fully_connected_s8: @return names ['MCU_OK']" in p for p in header_problems(lying, sources))
    # and a new status in the code that the header does not name
    more = [s.replace("return MCU_OK;\n}\n\nmcu_status mcu_paste_region_s8",
                      "return MCU_NO_IMPL;\n}\n\nmcu_status mcu_paste_region_s8") for s in sources]
    assert more != sources
    assert any("mcu_copy_region_s8: @return" in p for p in header_problems(header, more))


def test_kernels_do_what_the_header_says(tmp_path):
    """tests/c_api/kernel_contracts.c under ASan/UBSan: negative padding reads the region of a larger buffer
    (window kernels on the whole buffer equal them on the copied region with padding 0), and each documented
    MCU_ARG_ERROR case is returned with the output untouched."""
    from mcucompile.targets.host import CFLAGS, SANITIZE_ENV, SANITIZE_FLAGS, find_compiler

    exe = tmp_path / "kernel_contracts"
    cmd = [find_compiler(), *CFLAGS, *SANITIZE_FLAGS, "-I", str(HEADER.parent),
           str(Path(__file__).parent / "c_api" / "kernel_contracts.c"), *map(str, SOURCES), "-o", str(exe)]
    build = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], check=False, capture_output=True, text=True,
                         env={**os.environ, **SANITIZE_ENV}, timeout=60)
    assert run.returncode == 0 and run.stdout.strip().endswith("0 failed"), run.stdout + run.stderr
    assert "runtime error" not in run.stderr, run.stderr


if __name__ == "__main__":
    # python tests/test_c_api.py [HEADER [SOURCE_DIR]]
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HEADER
    srcs = sorted(Path(sys.argv[2]).glob("*.c")) if len(sys.argv) > 2 else SOURCES
    problems = header_problems(path.read_text(), [s.read_text() for s in srcs])
    print("\n".join(problems) or "no problems")
    sys.exit(1 if problems else 0)
