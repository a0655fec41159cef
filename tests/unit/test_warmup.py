"""operators.warmup: the shipped bundle's sitecustomize starts the model's imports in a Python
worker, and only there (a client or test process with the bundle on its path is left alone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.recommend import python_bundle
from operators.warmup import MODULES, WORKER_MODULE

# Run in a fresh interpreter with the bundle first on its path, as a worker is: after the
# preload (if any) finishes, report whether it ran and what it imported.
PROBE = """
import sys, time
from operators import warmup
p = warmup.preload
while p is not None and p.finished is None:
    time.sleep(0.05)
print(p is not None, p and p.error, all(m in sys.modules for m in warmup.MODULES), warmup.__file__)
"""


def _probe(bundle: Path, *argv: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(bundle)}
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, timeout=120,
                         check=True)
    return out.stdout.split()


@pytest.fixture(scope="module")
def bundle() -> Path:
    path = python_bundle()
    assert (path / "sitecustomize.py").is_file()
    return path


def test_a_python_worker_imports_the_model_libraries_at_start(bundle: Path) -> None:
    started, error, imported, where = _probe(bundle, WORKER_MODULE, "--id=1-1")
    assert (started, error, imported) == ("True", "None", "True")
    assert where.startswith(str(bundle))   # the shipped copy, not the checkout
    assert "torch" in MODULES


def test_any_other_process_with_the_bundle_on_its_path_is_left_alone(bundle: Path) -> None:
    started, _, imported, _ = _probe(bundle, "pytest")
    assert (started, imported) == ("False", "False")
