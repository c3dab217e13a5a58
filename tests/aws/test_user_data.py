"""The user data script run with bash: exports, a secret read from moto's Secrets Manager
at boot, quoting of awkward values, and the power-off after the command whatever its exit
status (a ``shutdown`` stub first on PATH records the call)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from aws_test_support import REGION, aws_environment

from dynalloc_dagster.aws.user_data import (
    BOOT_LOG,
    CLOUDWATCH_AGENT,
    LOG_FLUSH_S,
    MAX_USER_DATA_BYTES,
    UserDataError,
    build_user_data,
    cloudwatch_agent_config,
)

AWKWARD = "it's $HOME; `rm -rf /` \"quoted\" \\ and spaces"


def run_script(script: str, tmp_path: Path, endpoint: str) -> tuple[int, str, bool]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
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


def test_the_boot_log_goes_to_cloudwatch_and_is_flushed_before_power_off(aws, tmp_path):
    """With a log group, the script starts the image's CloudWatch agent on the boot log
    (one stream per instance) and waits for it to flush before powering off; stubs of
    the agent's control script and of ``sleep`` record what they were asked."""
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, record in ((CLOUDWATCH_AGENT, 'echo "agent $@" >> {calls}; cat "${{7#file:}}"'
                          ' > {calls}.json'), ("sleep", 'echo "sleep $@" >> {calls}')):
        stub = bin_dir / name
        stub.write_text("#!/bin/sh\n" + record.format(calls=calls) + "\n")
        stub.chmod(0o755)
    script = build_user_data(command=["echo", "ran"], environment={}, secrets={},
                             python_executable=sys.executable, working_directory="/",
                             log_group="/dynalloc/runs")
    returncode, out, powered_off = run_script(script, tmp_path, aws)
    assert (returncode, out, powered_off) == (0, "ran\n", True)
    recorded = calls.read_text().splitlines()
    assert recorded[0].startswith("agent -a fetch-config -m ec2 -s -c file:")
    assert recorded[1:] == [f"sleep {LOG_FLUSH_S}"]
    config = json.loads(Path(f"{calls}.json").read_text())
    assert config == cloudwatch_agent_config("/dynalloc/runs")
    assert config["logs"]["logs_collected"]["files"]["collect_list"] == [
        {"file_path": BOOT_LOG, "log_group_name": "/dynalloc/runs",
         "log_stream_name": "{instance_id}"}]


def test_without_the_agent_the_run_goes_on_and_powers_off_at_once(aws, tmp_path):
    script = build_user_data(command=["echo", "ran"], environment={}, secrets={},
                             python_executable=sys.executable, working_directory="/",
                             log_group="/dynalloc/runs")
    assert run_script(script, tmp_path, aws) == (0, "ran\n", True)
