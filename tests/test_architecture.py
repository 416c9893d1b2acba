"""The layering rules of pyproject.toml hold (import-linter): models, tracking and sim never
import one another; only gui imports Qt; only models imports torch."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    # import-linter is in the [test] extra: this runs or fails, never skips (issue 22 item 27)
    beside = Path(sys.executable).parent / "lint-imports"
    exe = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert exe, "lint-imports not found: pip install -e '.[test]'"
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_importing_the_package_stays_light():
    code = ("import sys, temstream, temstream.models, temstream.tracking, temstream.config; "
            "print(sorted(m for m in ('torch', 'PyQt6', 'pyqtgraph') if m in sys.modules))")
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
