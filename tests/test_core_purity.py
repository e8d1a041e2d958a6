"""`model/` is the pure core: importing it must not pull in Kafka clients or Flask."""

import ast
import subprocess
import sys
from pathlib import Path


def test_model_imports_neither_kafka_nor_flask():
    code = (
        "import importlib, pkgutil, sys\n"
        "import model\n"
        "for info in pkgutil.walk_packages(model.__path__, 'model.'):\n"
        "    importlib.import_module(info.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'kafka', 'confluent_kafka', 'flask'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"model/ pulled in: {result.stdout.strip()}"


def test_the_changelog_layouts_live_in_model_changelog_only():
    """Changing a state-changelog layout means editing ``model/changelog.py``: no other module of the
    state path packs bytes itself."""
    root = Path(__file__).resolve().parent.parent
    for module in (
        "model/features.py",
        "model/online.py",
        "consumer/state_store.py",
        "consumer/state_restore.py",
    ):
        tree = ast.parse((root / module).read_text())
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "struct" not in imported, f"{module} packs bytes itself: move the layout to model/changelog.py"
