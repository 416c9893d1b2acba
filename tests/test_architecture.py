"""The layering rules of pyproject.toml hold (import-linter): models, tracking and sim never
import one another; only gui imports Qt; only models imports torch."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_contracts_are_kept():
    result = subprocess.run(["lint-imports"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_importing_the_package_stays_light():
    code = ("import sys, temstream, temstream.models, temstream.tracking, temstream.config; "
            "print(sorted(m for m in ('torch', 'PyQt6', 'pyqtgraph') if m in sys.modules))")
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
