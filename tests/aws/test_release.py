"""The release recipe: the lock pins every runtime dependency at the tested versions with
hashes; release.sh, run in a clean clone, builds a wheel with the code version baked in
(the same string code_version() then reads) beside the lock and the deployment's config;
the scripts parse and the Image Builder component runs bootstrap.sh from the release.

bootstrap.sh itself installs the lock from PyPI onto an image and is not run here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
AWS = REPO / "deployment" / "aws"
PROJECT = "dynalloc"


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of deployment/aws/requirements.lock."""
    text = (AWS / "requirements.lock").read_text()
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1]):
        name, version = block.split(" ", 1)[0].split("==")
        entries[canonicalize_name(name)] = (version, re.findall(r"--hash=sha256:(\w{64})", block))
    return entries


def runtime_closure(name: str) -> set[str]:
    """Every distribution ``name`` needs at run time (no extras), recursively."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        for spec in metadata.requires(current) or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def test_the_lock_pins_every_runtime_dependency_as_tested_with_hashes():
    entries = locked()
    needed = runtime_closure(PROJECT)
    assert needed - set(entries) == set()
    for dependency in needed:
        version, hashes = entries[dependency]
        assert version == metadata.version(dependency), dependency
        assert hashes, f"{dependency} has no hash"
    assert "pytest" not in entries and "moto" not in entries  # dev tools stay out


@pytest.mark.slow
def test_release_builds_a_wheel_with_its_code_version(tmp_path):
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout.strip()
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "deployment/aws/release.sh", str(tmp_path / "releases")],
                          cwd=clone, capture_output=True, text=True, env=environment,
                          check=False)
    assert done.returncode == 0, done.stderr
    version = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"{commit}\+lock\.[0-9a-f]{{12}}", version)
    folder = tmp_path / "releases" / version
    wheel = next(folder.glob("dynalloc-*.whl"))
    assert zipfile.ZipFile(wheel).read("dynalloc_dagster/CODE_VERSION").decode().strip() \
        == version
    assert (folder / "requirements.lock").read_bytes() == (AWS / "requirements.lock").read_bytes()
    names = tarfile.open(folder / "deployment-aws.tar.gz").getnames()
    assert {"deployment/aws/dagster.yaml", "deployment/aws/image/bootstrap.sh"} <= set(names)
    assert not (clone / "dynalloc_dagster" / "CODE_VERSION").exists()  # the clone stays clean

    (clone / "README.md").write_text("changed\n")
    dirty = subprocess.run(["bash", "deployment/aws/release.sh", str(tmp_path / "r2")],
                           cwd=clone, capture_output=True, text=True, env=environment,
                           check=False)
    assert dirty.returncode == 1 and "uncommitted changes" in dirty.stderr


def test_release_names_the_setuptools_it_needs_in_a_plain_venv(tmp_path):
    """A fresh ``python -m venv`` brings setuptools 65 (Python 3.11) or none (3.12+): neither
    builds a wheel without build isolation. release.sh says so before building anything."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "plain")],
                   check=True)
    environment = {"PATH": f"{tmp_path / 'plain' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "deployment/aws/release.sh", str(tmp_path / "releases")],
                          cwd=clone, capture_output=True, text=True, env=environment,
                          check=False)
    assert done.returncode == 1
    assert "setuptools (none)" in done.stderr and "setuptools>=70.1" in done.stderr
    assert not (tmp_path / "releases").exists()


def test_make_installs_the_setuptools_release_needs():
    """release.sh builds with the venv's own setuptools (no build isolation): make installs
    the dev extra, which pins one that builds a wheel (70.1) and still has pkg_resources
    (parliament imports it; 82 removed it), and the venv the suite runs in has it."""
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["dev"]
    assert "setuptools>=70.1,<82" in dev
    install = (REPO / "Makefile").read_text().split("$(STAMP): pyproject.toml", 1)[1]
    assert "-e '.[dev]'" in install.split("touch $(STAMP)", 1)[0]
    assert Requirement("setuptools>=70.1,<82").specifier.contains(metadata.version("setuptools"))


def test_the_scripts_parse_and_the_component_runs_bootstrap_from_the_release():
    for script in (AWS / "lock.sh", AWS / "release.sh", AWS / "image" / "bootstrap.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
    component = yaml.safe_load((AWS / "image" / "component.yaml").read_text())
    assert component["schemaVersion"] == 1.0
    steps = {s["name"]: s for phase in component["phases"] for s in phase["steps"]}
    assert steps["FetchBootstrap"]["inputs"][0]["source"] == \
        "{{ ReleaseUri }}/deployment-aws.tar.gz"
    install = " ".join(steps["Install"]["inputs"]["commands"])
    assert 'bash /tmp/deployment/aws/image/bootstrap.sh "{{ ReleaseUri }}"' in install
    assert "dynalloc_dagster.aws.code_version" in steps["CodeVersion"]["inputs"]["commands"][0]


def test_the_image_compiles_the_kernels_once_the_wheel_is_installed():
    script = (AWS / "image" / "bootstrap.sh").read_text()
    wheel = script.index('install --quiet --no-deps "$work"/dynalloc-*.whl')
    assert script.index('"$root/.venv/bin/python" -m engine.precompile') > wheel


def test_make_test_compiles_the_kernels_before_the_suite():
    recipe = (REPO / "Makefile").read_text().split("\ntest: $(STAMP)\n", 1)[1].split("\n\n")[0]
    assert recipe.index("-m engine.precompile") < recipe.index("-m pytest")


_HUGE_PAGES = ("import numpy._core.multiarray as m, os;"
               " print(os.environ.get('NUMPY_MADVISE_HUGEPAGE'), m._get_madvise_hugepage())")


@pytest.mark.parametrize(("caller", "expected"), [(None, "0 False"), ("1", "1 True")])
def test_what_make_runs_has_numpys_huge_pages_off_unless_the_caller_sets_them(
        caller: str | None, expected: str):
    environment = {k: v for k, v in os.environ.items()
                   if k != "NUMPY_MADVISE_HUGEPAGE"}
    if caller is not None:
        environment["NUMPY_MADVISE_HUGEPAGE"] = caller
    done = subprocess.run(
        ["make", "-s", "--eval", f"huge-pages: ; @{sys.executable} -c \"{_HUGE_PAGES}\"",
         "huge-pages"], cwd=REPO, env=environment, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == expected


def test_make_installs_the_runtime_dependencies_at_the_locks_versions(tmp_path):
    """make's install takes the lock's pins as constraints (their hashes dropped), so the
    tests run the versions the image installs, whatever PyPI has released since."""
    venv = tmp_path / "venv"
    subprocess.run(["make", "-s", f"VENV={venv}", f"{venv}/constraints.txt"], cwd=REPO,
                   check=True)
    constraints = [Requirement(line) for line in (venv / "constraints.txt").read_text()
                   .splitlines()]
    assert {canonicalize_name(r.name): str(r.specifier) for r in constraints} == {
        canonicalize_name(name): f"=={version}" for name, (version, _) in locked().items()}
    recipe = subprocess.run(["make", "-n", "-B", f"VENV={venv}", f"{venv}/.installed"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert (f"uv pip install --quiet --compile-bytecode --python {venv}/bin/python"
            f" -e '.[dev]' --constraint {venv}/constraints.txt") in " ".join(
                recipe.replace("\\\n", " ").split())
