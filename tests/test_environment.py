"""pyproject.toml, environment.yml and the Colab constraints agree."""

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
COLAB_MANIFEST = ROOT.parent / "shared" / "colab" / "tpu-runtime-2026-08.txt"


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_normal(name)] = version
    return pins


def _normal(name):
    return name.lower().replace("_", "-")


COLAB_PINS = _pins((ROOT / "constraints" / "colab-tpu.txt").read_text().splitlines())


def test_environment_yml_mirrors_pyproject():
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    from_conda = {str(Requirement(r)) for r in pip_section if not r.startswith("-e")}
    extras = PYPROJECT["optional-dependencies"]
    from_pyproject = {str(Requirement(r)) for r in PYPROJECT["dependencies"] + extras["dev"] + extras["video"]}
    assert from_conda == from_pyproject
    python = next(d for d in conda["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.removeprefix("python") == PYPROJECT["requires-python"]


def test_lower_bounds_admit_colab_runtime():
    """Installing on Colab must keep its jax/flax/...: every pinned version satisfies our range."""
    checked = 0
    extras = PYPROJECT["optional-dependencies"]
    for text in PYPROJECT["dependencies"] + extras["dev"]:
        requirement = Requirement(text)
        version = COLAB_PINS.get(_normal(requirement.name))
        if version is not None:
            assert requirement.specifier.contains(version), f"{requirement} excludes Colab's {version}"
            checked += 1
    assert checked >= 10


def test_constraints_match_the_published_colab_manifest():
    if not COLAB_MANIFEST.exists():
        pytest.skip(f"{COLAB_MANIFEST} not present (it sits beside the repository in CI)")
    assert COLAB_PINS == _pins(COLAB_MANIFEST.read_text().splitlines())


def test_tensorflow_is_never_a_core_dependency():
    assert not any(Requirement(r).name.startswith("tensorflow-cpu") or Requirement(r).name == "tensorflow"
                   for r in PYPROJECT["dependencies"])
