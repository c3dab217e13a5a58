"""Helpers of the storage tests: the moto server's address and a test bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from dagster_aws.s3 import S3Resource

from dynalloc_dagster.storage import S3Storage


@dataclass(frozen=True)
class Moto:
    """Where the moto server listens and the client settings that reach it."""

    endpoint_url: str
    region_name: str = "us-east-1"

    def settings(self) -> dict[str, str]:
        return {"endpoint_url": self.endpoint_url, "region_name": self.region_name,
                "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

    def client(self, service: str) -> Any:
        return boto3.client(service, **self.settings())


@dataclass(frozen=True)
class Bucket:
    name: str
    kms_key_id: str
    moto: Moto

    def storage(self, prefix: str = "data", **kwargs: Any) -> S3Storage:
        return S3Storage(bucket=self.name, prefix=prefix, kms_key_id=self.kms_key_id,
                         s3=S3Resource(**self.moto.settings()), **kwargs)

    def object_keys(self) -> list[str]:
        pages = self.moto.client("s3").get_paginator("list_objects_v2").paginate(
            Bucket=self.name)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def answer_with_error(client: Any, operation: str, code: str, status: int) -> None:
    """Make ``client`` answer every ``operation`` call with the error ``code`` (HTTP
    ``status``) without sending it, as S3 answers a caller its policy does not allow."""
    def refuse(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return (AWSResponse("https://s3.invalid", status, {}, None),
                {"Error": {"Code": code, "Message": f"{code} (test)"},
                 "ResponseMetadata": {"HTTPStatusCode": status}})

    client.meta.events.register(f"before-call.s3.{operation}", refuse)
