"""The wheel carries what a non-editable install needs: the core, every first-party plugin its
entry points name, and the model files (models/ installs as the data package ``handsdk_models``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (so no build/ or egg-info lands in the repo),
    with this environment's setuptools (no download)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "handsdk", "plugins", "models"):
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("handsdk-*.whl")
    return whl


def test_wheel_holds_models_and_plugins(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    listed = {f["path"] for entry in manifest["models"].values() for f in entry["files"].values()}
    assert listed and {f"handsdk_models/{f}" for f in listed} <= names
    assert "handsdk_models/manifest.json" in names
    vocabularies = {p.name for p in (REPO / "models" / "signs").glob("*.json")}
    assert {f"handsdk_models/signs/{v}" for v in vocabularies} <= names
    entry_points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["handsdk"]
    for module in entry_points.values():
        assert f"{module}/__init__.py" in names, f"entry point module {module} missing from the wheel"
    page = {f"handsdk_serve/static/{p.name}" for p in (REPO / "plugins" / "handsdk_serve" / "static").iterdir()}
    assert page and page <= names  # handsdk serve's page is package data


def test_installed_wheel_tracks_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = (
        "import json, handsdk, handsdk_onnxruntime\n"
        "from handsdk import Tracker\n"
        "from handsdk.models import bundled_models_dir\n"
        "from handsdk.synthetic import synthetic_clip\n"
        "hands = Tracker().detect(next(iter(synthetic_clip(1, seed=7))).image)\n"
        "print(json.dumps([handsdk.__file__, handsdk_onnxruntime.__file__, str(bundled_models_dir()), len(hands)]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDSDK_")}
    env["PYTHONPATH"] = str(target)
    # run from an empty folder, the wheel's copy first on the path: nothing is read from the checkout
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    core, plugin, models, n_hands = json.loads(proc.stdout.strip().splitlines()[-1])
    for path in (core, plugin, models):
        assert Path(path).is_relative_to(target), path
    assert n_hands == 1


def test_version_has_one_source(wheel: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import handsdk
    from handsdk.cli import main

    assert wheel.name.startswith(f"handsdk-{handsdk.__version__}-")  # pyproject reads it from handsdk
    assert "handsdk/py.typed" in zipfile.ZipFile(wheel).namelist()  # type hints reach users' checkers
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"handsdk {handsdk.__version__}"
