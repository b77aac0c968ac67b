"""The package's imports run one way: frontend -> passes -> quant -> planning (memory, then patch, then
schedule) -> codegen -> project -> targets, with errors/ir/arith/ops below all and api/cli on top; and no
module imports another package's private names. Read from the source with ast, as a reader would."""

from __future__ import annotations

import ast

from conftest import REPO

PACKAGE = REPO / "compiler"
# Lowest first. A module may import from a lower rank only (its own package aside).
RANKS = [
    {"errors", "paths", "__version__", "progress"},
    {"ir", "arith", "datafile", "boards"},
    {"ops"},
    {"frontend", "passes"},
    {"quant"},
    {"memory"},
    {"patch"},
    {"schedule"},
    {"quantmcu"},
    {"codegen"},
    {"project"},
    {"targets", "reference"},
    {"report", "output"},
    {"api"},
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, names in enumerate(RANKS) for name in names}


def imports() -> list[tuple[str, str, str, int]]:
    """(importing file, its package, imported package, line) for every relative import across packages,
    and the names each imports."""
    out = []
    for f in sorted(PACKAGE.rglob("*.py")):
        rel = f.relative_to(PACKAGE)
        pkg = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
            target = base + (node.module.split(".") if node.module else [])
            names = [a.name for a in node.names]
            top = target[0] if target else None
            for name in names if top is None else [None]:
                out.append((rel.as_posix(), pkg, top or name, node.lineno, tuple(names)))
    return out


def test_every_package_has_a_rank():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert packages | modules <= set(RANK), f"give these a place in RANKS: {sorted((packages | modules) - set(RANK))}"


def test_imports_run_one_way():
    upward = [f"{f}:{line} ({pkg}) imports {tgt}" for f, pkg, tgt, line, _ in imports()
              if tgt != pkg and RANK[tgt] >= RANK[pkg]]
    assert not upward, "imports that run up or sideways:\n" + "\n".join(upward)


def test_no_private_names_across_packages():
    private = [f"{f}:{line} imports {n} from {tgt}" for f, pkg, tgt, line, names in imports() if tgt != pkg
               for n in names if n.startswith("_") and not n.startswith("__")]
    assert not private, "\n".join(private)


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The rule is not vacuous: an ops module importing codegen is reported."""
    fake = tmp_path / "compiler"
    (fake / "ops").mkdir(parents=True)
    (fake / "codegen").mkdir()
    for d in ("ops", "codegen"):
        (fake / d / "__init__.py").write_text("")
    (fake / "ops" / "bad.py").write_text("from ..codegen.generate import _c_array\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = imports()
    assert [(f, pkg, tgt) for f, pkg, tgt, _, _ in found] == [("ops/bad.py", "ops", "codegen")]
    assert RANK["codegen"] >= RANK["ops"] and found[0][4] == ("_c_array",)
