"""The user data script run with bash: exports, a secret read from moto's Secrets Manager
at boot, quoting of awkward values, and the power-off after the command whatever its exit
status (a ``shutdown`` stub first on PATH records the call)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from aws_test_support import REGION, aws_environment

from dynalloc_dagster.aws.user_data import (
    MAX_USER_DATA_BYTES,
    UserDataError,
    build_user_data,
)

AWKWARD = "it's $HOME; `rm -rf /` \"quoted\" \\ and spaces"


def run_script(script: str, tmp_path: Path, endpoint: str) -> tuple[int, str, bool]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "shutdown"
    stub = bin_dir / "shutdown"
    stub.write_text(f'#!/bin/sh\necho "$@" > {mark}\n')
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **aws_environment(endpoint)}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          check=False)
    return done.returncode, done.stdout, mark.exists() and mark.read_text() == "-h now\n"


@pytest.mark.parametrize("exit_code", [0, 3])
def test_the_script_runs_the_command_with_secrets_and_powers_off(aws, tmp_path, exit_code):
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="pg", SecretString="postgresql+psycopg2://u:p@h/d")["ARN"]
    command = [sys.executable, "-c",
               "import os, sys; print(os.environ['DB']); print(os.environ['ODD']);"
               f" print(os.getcwd()); sys.exit({exit_code})"]
    script = build_user_data(command=command, environment={"ODD": AWKWARD},
                             secrets={"DB": secret}, python_executable=sys.executable,
                             working_directory=str(tmp_path), header="run r1 (job)")
    assert "postgresql+psycopg2://u:p@h/d" not in script
    returncode, out, powered_off = run_script(script, tmp_path, aws)
    assert returncode == exit_code
    assert out.splitlines() == ["postgresql+psycopg2://u:p@h/d", AWKWARD, str(tmp_path)]
    assert powered_off


def test_a_secret_that_cannot_be_read_stops_before_the_run_and_powers_off(aws, tmp_path):
    script = build_user_data(
        command=["echo", "the run started"], environment={},
        secrets={"DB": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:missing"},
        python_executable=sys.executable, working_directory=str(tmp_path))
    returncode, out, powered_off = run_script(script, tmp_path, aws)
    assert returncode != 0
    assert "the run started" not in out
    assert powered_off


@pytest.mark.parametrize("environment, secrets, message", [
    ({"AWS_SECRET_ACCESS_KEY": "x"}, {}, "AWS_SECRET_ACCESS_KEY would put AWS credentials"),
    ({}, {"AWS_SESSION_TOKEN": "arn"}, "AWS_SESSION_TOKEN would put AWS credentials"),
    ({"BAD-NAME": "x"}, {}, "'BAD-NAME' is not a shell variable name"),
    ({"X": "y" * MAX_USER_DATA_BYTES}, {}, "over EC2's 16384"),
])
def test_refused_user_data_is_named(environment, secrets, message):
    with pytest.raises(UserDataError, match=message):
        build_user_data(command=["true"], environment=environment, secrets=secrets,
                        python_executable="python3", working_directory="/")
