"""Fixtures of the AWS tests: moto's server (one per session, reset per test), the
environment pointing boto3 at it, and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from aws_test_support import (
    REGION,
    Postgres,
    aws_environment,
    moto_server,
    postgres_bin,
    postgres_cluster,
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's standalone server on 127.0.0.1 (free port) for the whole session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A freshly reset moto, with this process's boto3 pointed at it; yields the URL."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


@pytest.fixture
def ec2(aws: str):
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster on 127.0.0.1 for the session (skips without the server)."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql"
                    " (.ci/run installs Debian's postgresql)")
    with postgres_cluster(bindir) as cluster:
        yield cluster
