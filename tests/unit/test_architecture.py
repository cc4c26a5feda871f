"""The package's architecture, read from its source: layered subpackages that import only downward, no
import cycles, no function-local imports of the package's own modules, short functions, and a CLI
whose help and method list import no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import selfdenoise
from selfdenoise.methods import registry

SRC = Path(selfdenoise.__file__).parent
#: Layers, bottom to top, by the first name under ``selfdenoise``. A module may import its own group
#: and any group of a lower rank; groups of the same rank (nets, classical, sequences) stay apart.
RANKS = {"core": 0, "nets": 1, "classical": 1, "sequences": 1, "methods": 2, "training": 3, "interface": 4,
         "bench": 5, "cli": 6, "napari": 6}  # the napari plugin: a front end beside the CLI, imported by neither
INTERFACE = {"api", "modelfile", "export", "zoo"}  # top-level modules of the public API
TOP = {"", "cli", "__main__"}  # the package root (its lazy re-exports), the CLI and ``python -m``
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = ["selfdenoise", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def group(module: str) -> str:
    first = module.split(".")[1] if "." in module else ""
    return "interface" if first in INTERFACE else "cli" if first in TOP else first


def is_package(module: str) -> bool:
    return (SRC.joinpath(*module.split(".")[1:]) / "__init__.py").is_file()


def exists(module: str) -> bool:
    rel = SRC.joinpath(*module.split(".")[1:])
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if is_package(module) else module.rsplit(".", 1)[0]
    base = package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(imported own module, line, inside a function or class) for every import of the package's own
    modules, including the submodules declared with ``lazy_loader.attach`` in a package ``__init__``."""
    found = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names if a.name.split(".")[0] == "selfdenoise")
            elif isinstance(child, ast.ImportFrom):
                target = resolve(module, child)
                if target.split(".")[0] == "selfdenoise":
                    subs = [f"{target}.{a.name}" for a in child.names if exists(f"{target}.{a.name}")]
                    found.extend((t, child.lineno, nested) for t in subs or [target])
            elif isinstance(child, ast.Call) and getattr(child.func, "attr", "") == "attach":
                for kw in child.keywords:
                    value = ast.literal_eval(kw.value)
                    found.extend((f"{module}.{sub}", child.lineno, nested) for sub in value)
            visit(child, inner)

    visit(tree, False)
    return found


def source_graph() -> dict[str, list[tuple[str, int, bool]]]:
    return {module_name(p): imports(module_name(p), ast.parse(p.read_text())) for p in sorted(SRC.rglob("*.py"))}


GRAPH = source_graph()


def test_every_module_belongs_to_a_layer():
    unknown = sorted({group(m) for m in GRAPH} - set(RANKS))
    assert not unknown, f"modules outside the layers {sorted(RANKS)}: {unknown}"


def test_no_function_local_imports_of_own_modules():
    local = [f"{m}:{line} imports {t}" for m, edges in GRAPH.items() for t, line, nested in edges if nested]
    assert not local, "import the package's own modules at module level:\n" + "\n".join(local)


def test_layers_import_only_downward():
    bad = []
    for m, edges in GRAPH.items():
        for target, line, _ in edges:
            a, b = group(m), group(target)
            if a != b and RANKS[b] >= RANKS[a]:
                bad.append(f"{m}:{line} ({a}) imports {target} ({b})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    edges = {m: sorted({t for t, _, _ in e if t in GRAPH and t != m}) for m, e in GRAPH.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in edges:
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_layering_test_catches_what_it_forbids():
    """The checks above can fail: an upward, a function-local and a lazily attached import are all seen."""
    tree = ast.parse("from ..api import denoise\n\ndef f():\n    from ..core import io\n\n"
                     "import lazy_loader as lazy\nlazy.attach(__name__, submodules=['n2n'])\n")
    found = imports("selfdenoise.methods.registry", tree)
    assert ("selfdenoise.api", 1, False) in found and ("selfdenoise.core.io", 4, True) in found
    assert ("selfdenoise.methods.registry.n2n", 7, False) in found
    assert group("selfdenoise.api") == "interface" and RANKS["interface"] > RANKS[group("selfdenoise.methods.n2n")]


def test_registered_methods_live_in_the_methods_layer_or_below():
    for name, entry in {**registry.IMAGE_METHODS, **registry.SEQUENCE_METHODS}.items():
        assert exists(entry.module_name), (name, entry.module_name)
        assert RANKS[group(entry.module_name)] <= RANKS["methods"], (name, entry.module_name)


def test_no_function_is_longer_than_80_lines():
    long = []
    for p in sorted(SRC.rglob("*.py")):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES:
                long.append(f"{module_name(p)}.{n.name}: {n.end_lineno - n.lineno + 1} lines")
    assert not long, "split these along their phases:\n" + "\n".join(long)


def test_the_loop_api_and_benchmarks_call_declared_hooks_only():
    """No ``getattr``/``hasattr`` probing of a method for optional hooks: the contract declares them all."""
    probes = []
    for p in [*(SRC / "training").glob("*.py"), *(SRC / "bench").glob("*.py"), SRC / "api.py", SRC / "export.py",
              SRC / "methods" / "fitting.py", SRC / "methods" / "base.py"]:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") in ("getattr", "hasattr") and n.args:
                subject = ast.unparse(n.args[0])
                if subject in ("method", "m", "cls", "self", "self.method", "trained.method"):
                    probes.append(f"{p.name}:{n.lineno} {ast.unparse(n)}")
    assert not probes, "\n".join(probes)


@pytest.mark.parametrize("args", [["--help"], ["methods"], ["bench", "--help"]])
def test_help_and_method_list_do_not_import_torch(args):
    code = ("import sys\nfrom selfdenoise.cli import main\nsys.argv = ['selfdenoise', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'numpy', 'scipy', 'skimage') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout[-500:]
    assert "Usage" in out.stdout or "n2n" in out.stdout
