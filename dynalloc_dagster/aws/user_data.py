"""The user data script of one run's EC2 instance, and the rule that keeps credentials out.

The script is plain bash run once as root by cloud-init at boot:

    set -euo pipefail; trap '<flush logs>; shutdown -h now' EXIT
    <start the CloudWatch agent>            (when a log group is given)
    export <non-secret settings>            (region, DAGSTER_HOME, DYNALLOC_*)
    NAME="$(<python> -c <read secret>)"     (each secret, read with the instance profile)
    cd <working directory>
    <python> -m dagster api execute_run '<ExecuteRunArgs JSON>'

The ``EXIT`` trap powers the instance off whatever the exit status (the run's, or a
failed secret read); the launcher starts instances with
``InstanceInitiatedShutdownBehavior=terminate``, so powering off terminates them. Every
word is quoted with :func:`shlex.quote`.

Logs: cloud-init writes the script's output (boot, secret reads, the whole run) to
``/var/log/cloud-init-output.log``; with a log group the script hands that file to the
CloudWatch agent (installed on the image, docs/aws.md "The image"), one stream per
instance named by its id, and on exit waits ``LOG_FLUSH_S`` seconds (the agent flushes
every 5 s) before powering off. An image without the agent says so in that log and runs
on (the console output, which ``get_run_worker_debug_info`` reads, still has the boot).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence

MAX_USER_DATA_BYTES = 16_384
"""EC2's limit on user data before base64 encoding."""

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
"""Environment variables that carry AWS credentials: never in user data (the instance
profile signs the worker's calls)."""

SHUTDOWN_COMMAND = "shutdown -h now"
BOOT_LOG = "/var/log/cloud-init-output.log"
CLOUDWATCH_AGENT = "amazon-cloudwatch-agent-ctl"
LOG_FLUSH_S = 10

_READ_SECRET = (
    "import sys, boto3; print(boto3.client('secretsmanager')"
    ".get_secret_value(SecretId=sys.argv[1])['SecretString'], end='')"
)


class UserDataError(ValueError):
    """The user data cannot be built: a credential, a bad name, or too long."""


def _exit_command() -> str:
    """The ``EXIT`` trap: let the agent flush (when started), then power off."""
    return f'[ "$cloudwatch" = 1 ] && sleep {LOG_FLUSH_S}; {SHUTDOWN_COMMAND}'


def refuse_credentials(names: Sequence[str], *, where: str) -> None:
    """Raise :class:`UserDataError` if any of ``names`` is an AWS credential variable."""
    found = sorted(set(names) & set(CREDENTIAL_VARIABLES))
    if found:
        raise UserDataError(
            f"{where}: {', '.join(found)} would put AWS credentials in the instance's user"
            " data; the worker signs with its instance profile, remove them")


def _check_name(name: str, *, where: str) -> None:
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(
            c.isalnum() or c == "_" for c in name):
        raise UserDataError(f"{where}: {name!r} is not a shell variable name")


def cloudwatch_agent_config(log_group: str) -> dict[str, object]:
    """The CloudWatch agent's config: the boot log into ``log_group``, one stream per
    instance (``{instance_id}``, the agent's placeholder)."""
    return {"agent": {"run_as_user": "root"},
            "logs": {"force_flush_interval": 5, "logs_collected": {"files": {"collect_list": [
                {"file_path": BOOT_LOG, "log_group_name": log_group,
                 "log_stream_name": "{instance_id}"}]}}}}


def _cloudwatch_lines(log_group: str) -> list[str]:
    config = json.dumps(cloudwatch_agent_config(log_group), separators=(",", ":"))
    missing = f"dynalloc: no {CLOUDWATCH_AGENT} on the image: logs not sent to {log_group}"
    return [
        f"if command -v {CLOUDWATCH_AGENT} >/dev/null 2>&1; then",
        '  cloudwatch_config="$(mktemp)"',
        f'  printf %s {shlex.quote(config)} > "$cloudwatch_config"',
        f'  {CLOUDWATCH_AGENT} -a fetch-config -m ec2 -s -c "file:$cloudwatch_config"',
        "  cloudwatch=1",
        "else",
        f"  echo {shlex.quote(missing)} >&2",
        "fi",
    ]


def build_user_data(
    *, command: Sequence[str], environment: Mapping[str, str],
    secrets: Mapping[str, str], python_executable: str, working_directory: str,
    header: str = "", log_group: str = "", preamble: Sequence[str] = (),
) -> str:
    """The bash script that runs ``command`` on the instance and powers it off after.

    Parameters
    ----------
    command
        The run's argv (``ExecuteRunArgs.get_command_args()``).
    environment
        Non-secret variables exported before the run (names checked, values quoted).
    secrets
        ``{variable: Secrets Manager secret id}``; each value is read at boot with the
        instance profile and never appears in the script.
    python_executable
        The project's Python on the image (reads the secrets with boto3).
    working_directory
        Where the run starts (the project's folder on the image).
    header
        Comment lines identifying the run (``#`` is added).
    log_group
        CloudWatch Logs group of the boot log (empty: no agent started).
    preamble
        Commands run after the settings and secrets, before ``command`` (each already
        a shell-quoted line).

    Raises
    ------
    UserDataError
        A credential variable in ``environment`` or ``secrets``, a name that is not a shell
        variable, or a script over :data:`MAX_USER_DATA_BYTES`.
    """
    refuse_credentials([*environment, *secrets], where="user data")
    lines = ["#!/bin/bash"]
    lines += [f"# {line}" for line in header.splitlines()]
    lines += [
        "# No credentials here: every AWS call is signed by the instance profile.",
        "set -euo pipefail",
        "cloudwatch=0",
        f"trap {shlex.quote(_exit_command())} EXIT",
    ]
    if log_group:
        lines += _cloudwatch_lines(log_group)
    for name, value in environment.items():
        _check_name(name, where="user data environment")
        lines.append(f"export {name}={shlex.quote(value)}")
    for name, secret_id in secrets.items():
        _check_name(name, where="user data secrets")
        lines.append(f"{name}=\"$({shlex.quote(python_executable)} -c"
                     f" {shlex.quote(_READ_SECRET)} {shlex.quote(secret_id)})\"")
        lines.append(f"export {name}")
    lines.append(f"cd {shlex.quote(working_directory)}")
    lines += preamble
    lines.append(shlex.join(command))
    script = "\n".join(lines) + "\n"
    size = len(script.encode("utf-8"))
    if size > MAX_USER_DATA_BYTES:
        raise UserDataError(f"user data is {size} bytes, over EC2's {MAX_USER_DATA_BYTES}")
    return script
