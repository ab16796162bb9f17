"""The layers' imports point one way, core ← training ← sweeps ← app, and `import jaxbp` stays light."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "jaxbp"
ORDER = ("core", "training", "sweeps", "app")
THIRD_PARTY = {  # what each layer may import beyond the standard library and the layers below it
    "core": {"jax", "numpy"},
    "training": {"jax", "numpy", "optax", "flax", "sklearn"},
    "sweeps": {"jax", "numpy", "optax", "mlflow", "matplotlib", "ray", "optuna", "cmaes", "sqlalchemy"},
    "app": {"jax", "mlflow", "rich", "typer", "sqlalchemy", "alembic"},
}  # sqlalchemy and alembic: MLflow's own, for its database stores (checked, migrated)


def imports(path: Path) -> set[str]:
    """Every module name ``path`` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ORDER)
def test_imports_point_one_way(layer):
    allowed = {f"jaxbp.{lower}" for lower in ORDER[: ORDER.index(layer) + 1]}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in imports(path):
            top = name.split(".")[0]
            if top == "jaxbp":
                assert name == "jaxbp" or any(name == a or name.startswith(a + ".") for a in allowed), \
                    f"{path.relative_to(ROOT.parent)} imports {name}, above its layer"
            else:
                assert top in stdlib or top in THIRD_PARTY[layer], f"{path.relative_to(ROOT.parent)} imports {name}"


def test_import_jaxbp_loads_only_what_is_used():
    code = ("import sys, jaxbp; heavy = lambda: sorted(m for m in ('jax', 'optax', 'mlflow', 'matplotlib', 'typer')"
            " if m in sys.modules); print(heavy()); jaxbp.backprop_batch; jaxbp.train; print(heavy());"
            " jaxbp.run_sweep; print(heavy())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "['jax', 'optax']"
    assert out[2] == "['jax', 'matplotlib', 'mlflow', 'optax']"


def test_the_command_lines_help_needs_neither_jax_nor_mlflow():
    code = ("import sys; from jaxbp.app.cli import main; main(['train', '--help']);"
            " print([m for m in ('jax', 'mlflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--eta" in out and out.strip().endswith("[]")


def test_public_api_names_resolve():
    import jaxbp

    for name in jaxbp.__all__:
        assert getattr(jaxbp, name) is not None, name
    assert set(jaxbp.__all__) <= set(dir(jaxbp))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jaxbp.nope  # noqa: B018


def test_importing_any_module_sets_no_environment_variable():
    """jaxbp's own modules set nothing (jax and MLflow set a few of their own when imported: imported first)."""
    code = ("import os, pkgutil, importlib, jaxbp, jax, optax, flax, mlflow, matplotlib, typer, rich;"
            " before = dict(os.environ);"
            " [importlib.import_module(m.name) for m in pkgutil.walk_packages(jaxbp.__path__, 'jaxbp.')];"
            " print(sorted(set(os.environ.items()) ^ set(before.items())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
