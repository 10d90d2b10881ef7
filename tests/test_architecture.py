"""The package's folders depend on each other in one direction only (docs/architecture.md):
each imports only from its own layer or the layers below, at module level or inside functions."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "keras_cifar"
# Bottom to top; a folder or module may import from its own layer and the ones below it.
LAYERS = [
    {"errors", "_fs", "_env", "backends", "__version__"},
    {"zoo"},
    {"data", "models"},
    {"training"},
    {"serving", "plots"},
    {"reproduce"},
    {"reference", "bench"},
    {"api", "cli", "__main__", "__init__"},
]
LAYER_OF = {name: index for index, layer in enumerate(LAYERS) for name in layer}


def _imports(path: Path) -> set[str]:
    """The keras_cifar top-level folders or modules `path` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_cifar"):
            names = [node.module] + ([f"keras_cifar.{a.name}" for a in node.names]
                                     if node.module == "keras_cifar" else [])
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("keras_cifar.")]
        found.update(n.split(".")[1] for n in names if "." in n)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_folder_and_top_level_module_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES}
    assert tops <= set(LAYER_OF), tops - set(LAYER_OF)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers_only(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    upward = {name for name in _imports(path) - {own} if LAYER_OF[name] > LAYER_OF[own]}
    assert not upward, f"{path.relative_to(PACKAGE)} imports {sorted(upward)} from above its layer"


def test_the_keras_path_never_imports_the_pytorch_reference():
    keras_path = [p for p in MODULES if p.relative_to(PACKAGE).parts[0] in
                  ("zoo", "data", "models", "training", "serving", "plots", "reproduce")]
    assert not [p for p in keras_path if "reference" in _imports(p)]
