"""The code version: read from the release's file or the checkout's git commit, tagged on
each run by the launcher and checked by the worker's user data, which fails the run
naming both versions when they differ."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import pytest
from aws_test_support import create_run
from dagster._core.launcher import LaunchRunContext

from dynalloc_dagster.aws import code_version as module
from dynalloc_dagster.aws.code_version import (
    CODE_VERSION_TAG,
    MISMATCH_EXIT,
    code_version,
    main,
)


@pytest.fixture
def fresh_version(monkeypatch, tmp_path):
    """code_version() recomputed, with the release file at a test path."""
    monkeypatch.setattr(module, "VERSION_FILE", tmp_path / "CODE_VERSION")
    code_version.cache_clear()
    yield tmp_path / "CODE_VERSION"
    code_version.cache_clear()


def test_a_release_file_wins_over_git(fresh_version):
    fresh_version.write_text("abc123+lock.0123456789ab\n")
    assert code_version() == "abc123+lock.0123456789ab"


def test_a_checkout_is_its_commit(fresh_version):
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True, cwd=module.PACKAGE_DIR).stdout.strip()
    assert code_version().removesuffix("-dirty") == head


def test_the_same_version_passes_and_another_fails_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        run = create_run(instance, status=dg.DagsterRunStatus.STARTING)
    assert main([code_version(), run.run_id]) == 0
    assert main(["0000000+lock.000000000000", run.run_id]) == MISMATCH_EXIT
    err = capsys.readouterr().err
    assert "launched by code 0000000+lock.000000000000 but this worker's image has" in err
    with dg.DagsterInstance.get() as instance:
        failed = instance.get_run_by_id(run.run_id)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        message = instance.all_logs(run.run_id,
                                    of_type=dg.DagsterEventType.RUN_FAILURE)[-1].message
    assert f"this worker's image has {code_version()}" in message


def test_the_check_is_a_cheap_module_run(tmp_path):
    """As the user data runs it: a Python start without importing Dagster."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dynalloc_dagster.aws.code_version",
         code_version()], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "dagster" not in {line.rsplit("|", 1)[-1].strip().split(".")[0]
                             for line in done.stderr.splitlines()}


def test_the_launcher_tags_the_run_and_its_instance(instance, ec2):
    run = create_run(instance)
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    stored = instance.get_run_by_id(run.run_id)
    assert stored.tags[CODE_VERSION_TAG] == code_version()
    instance_id = stored.tags["dynalloc/ec2_instance_id"]
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert {t["Key"]: t["Value"] for t in found["Tags"]}[CODE_VERSION_TAG] == code_version()
