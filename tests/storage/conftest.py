"""Fixtures of the storage tests: a moto server on 127.0.0.1 (port 0) for the whole
session, and per test a fresh bucket and KMS key reached over the socket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer
from storage_test_support import Bucket, Moto


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield Moto(endpoint_url=f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def bucket(moto: Moto) -> Bucket:
    """A new bucket and a new enabled KMS key."""
    name = f"dynalloc-{uuid.uuid4().hex[:12]}"
    moto.client("s3").create_bucket(Bucket=name)
    key_id = moto.client("kms").create_key(Description="dynalloc test")["KeyMetadata"]["KeyId"]
    return Bucket(name=name, kms_key_id=key_id, moto=moto)
