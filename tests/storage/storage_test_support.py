"""Helpers of the storage tests: the moto server's address and a test bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
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
