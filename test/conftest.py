"""Shared fixtures; keeps torch to the two cores CI has."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(min(2, os.cpu_count() or 1))


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``narrow-seg ARGS`` as a user would (a separate process)."""
    return subprocess.run(
        [sys.executable, "-m", "narrow_seg_ros.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture
def cli():
    return run_cli
