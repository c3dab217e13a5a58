"""Shared fixtures of the Dagster tests: tmp storage, a tmp instance, small run configs.

Every test stores its files under ``tmp_path`` and its runs in a tmp DagsterInstance; none
reads or writes ``<project>/data`` or ``$DAGSTER_HOME``. Run configs are small (50 paths,
one year after a 24-month warm-up, 8 configs) so a full pipeline takes seconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource
from dagster_test_support import (
    N_CONFIGS,
    Upstream,
    failure_text,
    once_per_session,
    run_job,
    small_run_config,
)
from moto.server import ThreadedMotoServer

from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.orchestration.stages import stage_request
from dynalloc_dagster.partitions import batch_partitions
from dynalloc_dagster.tags import INGEST_JOB, ROUND_JOB, SCENARIOS_JOB


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """Where the IO managers store files in this test (created on first write)."""
    return tmp_path / "data"


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A DagsterInstance with SQLite storage in a tmp folder."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as tmp_instance:
        yield tmp_instance


@pytest.fixture
def defs(data_root: Path) -> dg.Definitions:
    """The project's Definitions, storing under this test's data root."""
    return build_definitions(data_root=str(data_root))


@pytest.fixture(scope="session")
def upstream_template(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    """Everything upstream of strategy_evaluations (ingest, scenario paths, round 0 of the
    optimisation), materialized once per session with the small run config, shared by
    the xdist workers; tests copy it (see ``upstream``) and never modify it."""

    def materialize(folder: Path) -> dict[str, Any]:
        root = folder / "data"
        template_defs = build_definitions(data_root=str(root))
        config = small_run_config()
        with dg.instance_for_test(temp_dir=str(folder)) as template_instance:
            for job_name in (INGEST_JOB, SCENARIOS_JOB, ROUND_JOB):
                request = stage_request(job_name, template_instance, pipeline="manual",
                                        run_config=config, round_index=0)
                result = run_job(template_defs, job_name, template_instance,
                                 run_config=request.run_config, tags=request.tags)
                assert result.success, failure_text(result)
            (batch,) = template_instance.get_dynamic_partitions(batch_partitions.name)
        config_ids = pl.read_parquet(root / "strategy_configs.parquet")["config_id"].to_list()
        assert len(config_ids) == N_CONFIGS
        return {"batch": batch, "config_ids": config_ids}

    folder, made = once_per_session(tmp_path_factory, "upstream", materialize)
    return Upstream(root=folder / "data", batch=made["batch"], config_ids=made["config_ids"])


@pytest.fixture
def upstream(
    upstream_template: Upstream, data_root: Path, instance: dg.DagsterInstance
) -> Upstream:
    """A private copy of the upstream files in ``data_root``, with the round-0 batch
    registered as a dynamic partition of this test's instance."""
    shutil.copytree(upstream_template.root, data_root)
    instance.add_dynamic_partitions(batch_partitions.name, [upstream_template.batch])
    return Upstream(root=data_root, batch=upstream_template.batch,
                    config_ids=upstream_template.config_ids)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[dict[str, str]]:
    """A moto server on 127.0.0.1 (port 0) for the session: its connection settings."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {"endpoint_url": f"http://{host}:{port}", "region_name": "us-east-1",
           "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    server.stop()


@pytest.fixture
def moto_s3(moto_server: dict[str, str]) -> dict[str, str]:
    """The moto server with the bucket ``io-test`` and a KMS key, made again when missing:
    moto's state is one per process, and another module's tests on the same worker may
    reset it (tests/aws resets moto before each test)."""
    s3 = S3Resource(**moto_server).get_client()
    if "io-test" not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket="io-test")
    kms = boto3.client("kms", **moto_server)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    key_id = aliases.get("alias/io-test")
    if key_id is None:
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/io-test", TargetKeyId=key_id)
    return {**moto_server, "bucket": "io-test", "kms_key_id": key_id}
