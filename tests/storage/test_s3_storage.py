"""S3Storage against moto's server over a real socket: SSE-KMS on every object, checksums,
paginated listing, and a bad bucket or KMS key refused before anything is written
(directly and when a Dagster run starts), the artifact store and the aws environment."""

from __future__ import annotations

import hashlib
import io

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from storage_test_support import Bucket, answer_with_error

from dynalloc_dagster.environment import resources_for
from dynalloc_dagster.resources import ArtifactStore
from dynalloc_dagster.storage import (
    CorruptObjectError,
    ObjectNotFoundError,
    StorageConfigError,
    StorageError,
)
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager


def _assert_encrypted(bucket: Bucket, key: str) -> None:
    head = bucket.moto.client("s3").head_object(Bucket=bucket.name, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(bucket.kms_key_id)


def test_put_get_encrypted_with_the_configured_key(bucket: Bucket) -> None:
    store = bucket.storage(prefix="runs/a")
    sums = store.put_many({"t/x.parquet": b"alpha", "y.npz": b"beta"})
    assert bucket.object_keys() == ["runs/a/t/x.parquet", "runs/a/y.npz"]
    for key in bucket.object_keys():
        _assert_encrypted(bucket, key)
    assert store.get("t/x.parquet") == b"alpha"
    assert sums["y.npz"] == hashlib.sha256(b"beta").hexdigest()
    assert store.uri("y.npz") == f"s3://{bucket.name}/runs/a/y.npz"
    with pytest.raises(ObjectNotFoundError, match=rf"s3://{bucket.name}/runs/a/none does not"):
        store.get("none")


def test_a_changed_object_is_refused_naming_its_uri(bucket: Bucket) -> None:
    store = bucket.storage()
    store.put("t.bin", bytes(range(100)))
    flipped = bytearray(range(100))
    flipped[42] ^= 0x10
    # a writer that keeps the old checksum metadata (what a bit rot or a foreign tool leaves)
    bucket.moto.client("s3").put_object(
        Bucket=bucket.name, Key="data/t.bin", Body=bytes(flipped),
        Metadata={"sha256": hashlib.sha256(bytes(range(100))).hexdigest()})
    with pytest.raises(CorruptObjectError, match=rf"s3://{bucket.name}/data/t.bin is corrupted"):
        store.get("t.bin")
    bucket.moto.client("s3").put_object(Bucket=bucket.name, Key="data/u.bin", Body=b"x")
    with pytest.raises(CorruptObjectError, match=r"u\.bin has no recorded checksum"):
        store.get("u.bin")


def test_missing_lists_page_by_page(bucket: Bucket) -> None:
    store = bucket.storage(list_page_size=3)
    present = {f"ev/batch=r000/scenario=s{i:02d}.parquet": b"x" for i in range(25)}
    store.put_many(present)
    absent = [f"ev/batch=r001/scenario=s{i:02d}.parquet" for i in range(4)]
    wanted = [*present, *absent]  # > 20 keys: one paginated listing, not 29 HEADs
    assert store.missing(wanted) == absent
    assert len(store.list_keys("ev")) == 25


def test_a_missing_bucket_fails_before_any_write(bucket: Bucket) -> None:
    store = bucket.storage()
    wrong = store.model_copy(update={"bucket": "no-such-bucket"})
    with pytest.raises(StorageConfigError,
                       match=r"S3 bucket 'no-such-bucket' \(prefix 'data'\) is not usable"
                       r" \(NoSuchBucket.*\): no such bucket"):
        wrong.put("x.bin", b"x")
    assert bucket.object_keys() == []


def test_a_403_on_a_missing_key_is_not_found_and_on_a_present_one_is_denied(
        bucket: Bucket) -> None:
    """Without an unconditioned s3:ListBucket grant S3 answers a GET of a missing key with
    403: the storage lists the key to tell "does not exist" from "access denied"."""
    store = bucket.storage()
    store.put("here.bin", b"x")
    answer_with_error(store.client(), "GetObject", "AccessDenied", 403)
    with pytest.raises(ObjectNotFoundError, match=r"data/gone.bin does not exist"):
        store.get("gone.bin")
    with pytest.raises(StorageError, match=r"cannot read .*data/here.bin \(AccessDenied"):
        store.get("here.bin")


def test_a_listing_refused_names_the_grant_it_needs(bucket: Bucket) -> None:
    store = bucket.storage(prefix="runs/a")
    answer_with_error(store.client(), "ListObjectsV2", "AccessDenied", 403)
    with pytest.raises(StorageConfigError, match=r"s3:ListBucket on the bucket with s3:prefix"
                       r" runs/a/\*"):
        store.verify()


def test_a_missing_kms_key_fails_before_any_write(bucket: Bucket) -> None:
    store = bucket.storage()
    wrong = store.model_copy(update={"kms_key_id": "alias/does-not-exist"})
    with pytest.raises(StorageConfigError,
                       match=rf"KMS key 'alias/does-not-exist' for bucket '{bucket.name}'"):
        wrong.put("x.bin", b"x")
    assert bucket.object_keys() == []


def test_a_disabled_kms_key_fails_before_any_write(bucket: Bucket) -> None:
    bucket.moto.client("kms").disable_key(KeyId=bucket.kms_key_id)
    with pytest.raises(StorageConfigError, match="is Disabled, not Enabled"):
        bucket.storage().put("x.bin", b"x")
    assert bucket.object_keys() == []


@dg.asset
def table() -> pl.DataFrame:
    return pl.DataFrame({"a": [1, 2, 3]})


@pytest.fixture
def aws_env(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """The aws environment's variables, pointing boto3 at the moto server."""
    for name, value in {
        "DYNALLOC_S3_BUCKET": bucket.name, "DYNALLOC_S3_PREFIX": "prod/v1",
        "DYNALLOC_KMS_KEY_ID": bucket.kms_key_id, "AWS_ENDPOINT_URL": bucket.moto.endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    return bucket


def test_aws_environment_stores_assets_and_artifacts_in_s3(aws_env: Bucket) -> None:
    resources = resources_for("aws")

    @dg.asset
    def chart(artifacts: ArtifactStore) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"uri": artifacts.write("chart.png", b"\x89PNG")})

    result = dg.materialize([table, chart], resources=resources)
    assert result.success
    assert aws_env.object_keys() == ["prod/v1/artifacts/chart.png", "prod/v1/table.parquet"]
    for key in aws_env.object_keys():
        _assert_encrypted(aws_env, key)
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key == dg.AssetKey("chart")]
    assert event.materialization.metadata["uri"].value == (
        f"s3://{aws_env.name}/prod/v1/artifacts/chart.png")
    [stored] = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey("table")]
    body = aws_env.moto.client("s3").get_object(
        Bucket=aws_env.name, Key="prod/v1/table.parquet")["Body"].read()
    assert stored.materialization.metadata["stored_sha256"].value == (
        hashlib.sha256(body).hexdigest())
    assert_frame_equal(pl.read_parquet(io.BytesIO(body)), pl.DataFrame({"a": [1, 2, 3]}))


@pytest.mark.parametrize("broken", ["DYNALLOC_S3_BUCKET", "DYNALLOC_KMS_KEY_ID"])
def test_aws_run_with_a_bad_bucket_or_key_fails_at_start_writing_nothing(
    aws_env: Bucket, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    monkeypatch.setenv(broken, "does-not-exist")
    ran = []

    @dg.asset
    def first() -> pl.DataFrame:
        ran.append("first")
        return pl.DataFrame({"a": [1]})

    result = dg.materialize([first], resources=resources_for("aws"), raise_on_error=False)
    assert not result.success
    assert ran == []  # resource setup failed before the asset ran
    failure = next(e for e in result.all_events if e.is_failure)
    assert "'does-not-exist'" in str(failure.event_specific_data)
    assert aws_env.object_keys() == []


def test_the_parquet_io_manager_takes_any_storage(bucket: Bucket) -> None:
    manager = PolarsParquetIOManager(storage=bucket.storage(prefix="p"))
    out = dg.build_output_context(asset_key=["group", "t"])
    manager.handle_output(out, pl.DataFrame({"a": [1.5]}))
    assert bucket.object_keys() == ["p/group/t.parquet"]
    _assert_encrypted(bucket, "p/group/t.parquet")


def test_a_large_object_goes_up_in_parts_with_its_checksums(bucket: Bucket) -> None:
    """Above the threshold (5 MiB here, the least S3 allows) an object is a multipart
    upload of 5 MiB parts: S3's SHA-256 checksum per part, SSE-KMS with the key, and the
    whole object's sha256 metadata that get() checks."""
    store = bucket.storage(multipart_threshold_mb=5, multipart_chunk_mb=5)
    data = bytes(range(256)) * (11 * 4096)  # 11 MiB: three parts
    store.put_many({"big.npz": data, "small.bin": b"x"})
    s3 = bucket.moto.client("s3")
    big = s3.head_object(Bucket=bucket.name, Key="data/big.npz", ChecksumMode="ENABLED")
    assert big["ETag"].strip('"').endswith("-3")
    assert big["ChecksumSHA256"]  # real S3 adds "-3": a checksum of the parts' checksums
    assert big["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    _assert_encrypted(bucket, "data/big.npz")
    small = s3.head_object(Bucket=bucket.name, Key="data/small.bin", ChecksumMode="ENABLED")
    assert "-" not in small["ETag"] and small["ChecksumSHA256"]
    assert store.get("big.npz") == data
