"""The S3 source: the files of ``market_sources.files`` under ``s3://bucket/prefix/``.

Read with boto3 ``list_objects_v2`` and ``get_object`` (the project's object storage
verifies checksums it recorded itself, which files a data vendor uploads do not carry).
Credentials, region and endpoint come from boto3's usual chain unless configured.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from engine.market.validation import MarketDataError


class BucketReader:
    """The market files directly under ``s3://bucket/prefix/`` (and, for a portfolio,
    under ``s3://bucket/prefix/series/``)."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region_name: str | None = None, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url or None,
                                             region_name=region_name or None)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def names(self, under: str = "") -> set[str]:
        start = self._key(f"{under}/" if under else "")
        names: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start)
            for page in pages:
                for item in page.get("Contents", []):
                    rest = item["Key"][len(start):]
                    if rest and "/" not in rest:
                        names.add(f"{under}/{rest}" if under else rest)
        except (ClientError, BotoCoreError) as error:
            raise MarketDataError(f"{self.origin}: rule unreadable: cannot list the market"
                                  f" files: {error}") from None
        return names

    def read(self, name: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise MarketDataError(f"{self.locate(name)}: rule unreadable: {error}") from None

    def locate(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    @property
    def origin(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")
