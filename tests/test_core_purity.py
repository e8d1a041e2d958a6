"""`model/` is the pure core: importing it must not pull in Kafka clients or Flask."""

import subprocess
import sys


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
