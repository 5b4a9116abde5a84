"""The entry points exist and behave: console script module, `python -m reconciler`, global flags."""

import subprocess
import sys

from reconciler import __version__
from reconciler.cli import main


def test_python_dash_m_prints_version():
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"reconciler {__version__}"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 1
    assert "usage: reconciler" in capsys.readouterr().err
