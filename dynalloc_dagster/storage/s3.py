"""Objects in an S3 bucket: ``s3://<bucket>/<prefix>/<key>``, encrypted with SSE-KMS.

Every object is written whole through boto3's transfer manager: one ``PutObject`` up to
``multipart_threshold_mb``, a multipart upload above it (a single PutObject stops at 5 GB;
a scenario's paths pass that near 71,000 paths) in parts of ``multipart_chunk_mb``. Either
way S3 makes the object visible only once complete, so a reader never sees part of one.
Each carries ``ServerSideEncryption="aws:kms"``, the configured ``SSEKMSKeyId``, S3's own
SHA-256 checksum (``ChecksumAlgorithm``: per part for a multipart upload, checked by S3 on
receipt) and the sha256 of the whole object as metadata (checked by ``get``). Before the
first write the bucket and the KMS key (``kms:DescribeKey``, enabled) are checked, so a
wrong bucket or key fails naming it before anything is written.

Every existence check is a ``ListObjectsV2`` under the prefix (``MaxKeys=1``), never a
HEAD: the worker's ``s3:ListBucket`` grant is conditioned on ``s3:prefix``, which a
``HeadBucket`` does not carry, and without a matching ``ListBucket`` grant S3 answers a
GET or HEAD of a missing key with 403, not 404. A 403 on ``get`` is therefore told apart
by listing the key: absent, it is "does not exist"; present, it is access denied.

The client is dagster-aws's ``S3Resource``; with no endpoint configured boto3 takes
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_KMS``) from the
environment.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import boto3
import dagster as dg
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from dynalloc_dagster.storage.base import (
    CorruptObjectError,
    ObjectNotFoundError,
    ObjectStorage,
    StorageConfigError,
    StorageError,
    check_key,
    sha256_hex,
)

CHECKSUM_METADATA = "sha256"
MIB = 1024 * 1024
# above this many keys, ``missing`` lists the common prefix instead of one listing per key
_LIST_ABOVE = 20


class S3Storage(ObjectStorage):
    """Objects in ``s3://bucket/prefix``; see the module docstring for the guarantees."""

    bucket: str = Field(description="S3 bucket name")
    prefix: str = Field(default="", description="key prefix inside the bucket, no slashes at"
                        " either end needed")
    kms_key_id: str = Field(description="KMS key id, ARN or alias every object is encrypted"
                            " with (SSE-KMS)")
    s3: S3Resource = Field(default_factory=S3Resource,
                           description="the S3 client's settings (region, endpoint, retries)")
    list_page_size: int = Field(default=1000, ge=1, le=1000,
                                description="keys per ListObjectsV2 page")
    multipart_threshold_mb: int = Field(default=64, ge=5, le=5120,
                                        description="objects above this many MiB go up as"
                                        " multipart uploads (S3: 5 MiB to 5 GiB)")
    multipart_chunk_mb: int = Field(default=64, ge=5, le=5120,
                                    description="MiB per part of a multipart upload (S3: at"
                                    " least 5 MiB, at most 10,000 parts)")

    _client: Any = PrivateAttr(default=None)
    _verified: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Check the bucket and the KMS key when a run starts, before any asset runs."""
        self.verify()

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self._prefix()}".rstrip("/")

    def _prefix(self) -> str:
        return self.prefix.strip("/")

    def object_key(self, key: str) -> str:
        """The S3 key of ``key`` (prefix included)."""
        prefix = self._prefix()
        return f"{prefix}/{check_key(key)}" if prefix else check_key(key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def client(self) -> Any:
        """The boto3 S3 client (built once from ``s3``)."""
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def _kms_client(self) -> Any:
        s3 = self.s3
        session = boto3.session.Session(profile_name=s3.profile_name)
        return session.client(
            "kms", region_name=self.client().meta.region_name,
            endpoint_url=s3.endpoint_url,  # None: boto3 reads AWS_ENDPOINT_URL(_KMS)
            use_ssl=s3.use_ssl, verify=s3.verify,
            aws_access_key_id=s3.aws_access_key_id,
            aws_secret_access_key=s3.aws_secret_access_key,
            aws_session_token=s3.aws_session_token,
        )

    def verify(self) -> None:
        """Raise StorageConfigError unless the bucket is reachable and the KMS key exists
        and is enabled. Runs once per instance (again after a failure)."""
        if self._verified:
            return
        prefix = self._prefix()
        try:
            self.client().list_objects_v2(Bucket=self.bucket, Prefix=f"{prefix}/" if prefix
                                          else "", MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            code = _code(exc) if isinstance(exc, ClientError) else ""
            hint = {"NoSuchBucket": "no such bucket: check DYNALLOC_S3_BUCKET and the region",
                    "AccessDenied": "access denied: the role needs s3:ListBucket on the bucket"
                    f" with s3:prefix {prefix or '(any)'}/*"}.get(
                        code, "check the bucket name (DYNALLOC_S3_BUCKET), region, endpoint"
                        " and permissions")
            raise StorageConfigError(
                f"S3 bucket {self.bucket!r} (prefix {prefix!r}) is not usable"
                f" ({_reason(exc)}): {hint}") from exc
        try:
            meta = self._kms_client().describe_key(KeyId=self.kms_key_id)["KeyMetadata"]
        except (ClientError, BotoCoreError) as exc:
            raise StorageConfigError(
                f"KMS key {self.kms_key_id!r} for bucket {self.bucket!r} is not usable"
                f" ({_reason(exc)}): check DYNALLOC_KMS_KEY_ID and kms:DescribeKey") from exc
        if meta.get("KeyState") != "Enabled":
            raise StorageConfigError(
                f"KMS key {self.kms_key_id!r} is {meta.get('KeyState')}, not Enabled:"
                " objects cannot be encrypted with it")
        self._verified = True

    def put_many(self, objects: Mapping[str, bytes]) -> dict[str, str]:
        sums = {check_key(key): sha256_hex(data) for key, data in objects.items()}
        self.verify()
        client = self.client()
        written: list[str] = []
        transfer = TransferConfig(multipart_threshold=self.multipart_threshold_mb * MIB,
                                  multipart_chunksize=self.multipart_chunk_mb * MIB,
                                  use_threads=False)
        for key, digest in sums.items():
            try:
                client.upload_fileobj(
                    io.BytesIO(objects[key]), self.bucket, self.object_key(key),
                    ExtraArgs={"ServerSideEncryption": "aws:kms",
                               "SSEKMSKeyId": self.kms_key_id, "ChecksumAlgorithm": "SHA256",
                               "Metadata": {CHECKSUM_METADATA: digest}},
                    Config=transfer)
            except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
                raise StorageError(
                    f"cannot write {self.uri(key)} ({_reason(exc)}); of this output"
                    f" {len(written)} object(s) were written before it"
                    f" ({', '.join(written[:3])}) and {len(sums) - len(written) - 1} not"
                ) from exc
            written.append(key)
        return sums

    def get(self, key: str) -> bytes:
        uri = self.uri(key)
        try:
            response = self.client().get_object(Bucket=self.bucket, Key=self.object_key(key))
            data = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404") or (
                    _code(exc) in ("AccessDenied", "403") and not self._exists(key)):
                raise ObjectNotFoundError(f"{uri} does not exist") from None
            raise StorageError(f"cannot read {uri} ({_reason(exc)})") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {uri} ({_reason(exc)})") from exc
        recorded = response.get("Metadata", {}).get(CHECKSUM_METADATA)
        if recorded is None:
            raise CorruptObjectError(
                f"{uri} has no recorded checksum (no {CHECKSUM_METADATA} metadata): written"
                " by hand or by another tool; re-materialize it")
        actual = sha256_hex(data)
        if actual != recorded:
            raise CorruptObjectError(
                f"{uri} is corrupted: sha256 {actual} ({len(data)} bytes) does not match the"
                f" {recorded} recorded when it was written; re-materialize it")
        return data

    def missing(self, keys: Iterable[str]) -> list[str]:
        wanted = list(keys)
        if len(wanted) <= _LIST_ABOVE:
            return [key for key in wanted if not self._exists(key)]
        present = set(self.list_keys(posixpath.commonpath(wanted)))
        return [key for key in wanted if key not in present]

    def _exists(self, key: str) -> bool:
        """Whether the object exists: the first key listed under its own name is itself
        (keys list in byte order, so ``key`` precedes every ``key...``)."""
        name = self.object_key(key)
        try:
            found = self.client().list_objects_v2(Bucket=self.bucket, Prefix=name, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot look up {self.uri(key)} ({_reason(exc)})") from exc
        return any(item["Key"] == name for item in found.get("Contents", []))

    def list_keys(self, folder: str = "") -> list[str]:
        """Every key under ``folder`` (a key prefix ending at a ``/``; "" for all), read page
        by page (``list_page_size`` keys per ListObjectsV2 call)."""
        base = self._prefix()
        start = "/".join(p for p in (base, folder.strip("/")) if p)
        paginator = self.client().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=f"{start}/" if start else "",
            PaginationConfig={"PageSize": self.list_page_size},
        )
        strip = len(base) + 1 if base else 0
        try:
            return [item["Key"][strip:] for page in pages for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list s3://{self.bucket}/{start} ({_reason(exc)})") from exc


    # --- one small object changed only by conditional writes (the data-root lease) -------

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, ETag) of ``key``, or None when it does not exist (a 403 on a missing
        key is told apart by listing it, as in ``get``). No checksum: the caller's own
        record, changed only through ``put_if`` and ``delete_if``."""
        try:
            response = self.client().get_object(Bucket=self.bucket, Key=self.object_key(key))
            return response["Body"].read(), response["ETag"]
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404") or (
                    _code(exc) in ("AccessDenied", "403") and not self._exists(key)):
                return None
            raise StorageError(f"cannot read {self.uri(key)} ({_reason(exc)})") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {self.uri(key)} ({_reason(exc)})") from exc

    def put_if(self, key: str, data: bytes, etag: str | None) -> bool:
        """Write ``key`` only if it does not exist (``etag`` None: ``IfNoneMatch='*'``) or
        still has ``etag`` (``IfMatch``); False when S3 refuses the condition (412
        PreconditionFailed, or 409 ConditionalRequestConflict: another conditional write
        to the key was in flight)."""
        condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        try:
            self.client().put_object(
                Bucket=self.bucket, Key=self.object_key(key), Body=data,
                ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id,
                ContentType="application/json", **condition)
        except ClientError as exc:
            if _precondition_failed(exc):
                return False
            raise StorageError(f"cannot write {self.uri(key)} ({_reason(exc)})") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot write {self.uri(key)} ({_reason(exc)})") from exc
        return True

    def delete_if(self, key: str, etag: str) -> bool:
        """Delete ``key`` only if it still has ``etag`` (``DeleteObject`` with ``IfMatch``);
        False when it changed or is gone."""
        try:
            self.client().delete_object(Bucket=self.bucket, Key=self.object_key(key),
                                        IfMatch=etag)
        except ClientError as exc:
            if _precondition_failed(exc) or _code(exc) in ("NoSuchKey", "404"):
                return False
            raise StorageError(f"cannot delete {self.uri(key)} ({_reason(exc)})") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot delete {self.uri(key)} ({_reason(exc)})") from exc
        return True


def _precondition_failed(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)
