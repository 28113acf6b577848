"""House rules checked on the source: one error tree, dependencies that run one way."""

from __future__ import annotations

import ast
import inspect

import zoo
import zoo.errors
from helpers import REPO


def defined_classes(folder):
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                yield path, node


def test_every_error_and_warning_class_lives_in_errors_py_and_is_exported():
    for path, node in defined_classes(REPO / "zoo"):
        bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
        if any(base.endswith(("Error", "Exception", "Warning", "Interrupted")) for base in bases):
            assert path.name == "errors.py", f"{path}: {node.name}"
    tree = [
        obj
        for obj in vars(zoo.errors).values()
        if inspect.isclass(obj) and issubclass(obj, Exception)
    ]
    assert len(tree) > 10
    for cls in tree:
        assert issubclass(cls, (zoo.ZooError, zoo.ZooWarning)), cls
        assert cls.__name__ in zoo.__all__ and getattr(zoo, cls.__name__) is cls


def test_the_core_never_imports_zoo_serve():
    for path in sorted((REPO / "zoo").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "zoo.serve" or n.startswith("zoo.serve.") for n in names), path


def imports_of(package_dir, package):
    """{module: the modules of ``package`` it imports}, read from the source."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        modules[".".join((package, *parts)).removesuffix(".__init__")] = path
    graph = {}
    for module, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
        graph[module] = found
    return graph


def test_serve_has_no_import_cycles():
    """serve/ reads in one direction: options and config files, the server's parts from the
    loader up to the services, the engines above them."""
    graph = imports_of(REPO / "serve", "zoo.serve")
    assert len(graph) > 20

    def cycle_from(module, path):
        for imported in graph.get(module, ()):
            if imported in path:
                return [*path[path.index(imported) :], imported]
            if found := cycle_from(imported, [*path, imported]):
                return found
        return None

    for module in graph:
        assert cycle_from(module, [module]) is None, " -> ".join(cycle_from(module, [module]))
