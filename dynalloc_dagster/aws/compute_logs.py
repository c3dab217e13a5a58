"""Compute logs (each step's stdout/stderr) in S3 beside the data, encrypted with the
data's KMS key: dagster-aws's ``S3ComputeLogManager`` with SSE-KMS on every upload and its
keys under ``<prefix>/compute-logs`` (inside the prefix the worker policy grants).

dagster-aws passes ``upload_extra_args`` through unresolved (no ``env:``), and
``ServerSideEncryption: aws:kms`` alone would use the account's AWS-managed ``aws/s3``
key; this class takes the key id as a ``StringSource`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import Field, StringSource
from dagster._serdes.config_class import ConfigurableClassData
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

COMPUTE_LOG_FOLDER = "compute-logs"


class KmsS3ComputeLogManager(S3ComputeLogManager):
    """``S3ComputeLogManager`` whose uploads are SSE-KMS with ``kms_key_id``, stored under
    ``<prefix>/compute-logs`` (``compute-logs`` with an empty prefix)."""

    def __init__(self, *, bucket: str, kms_key_id: str, prefix: str = "",
                 inst_data: ConfigurableClassData | None = None, **kwargs: Any) -> None:
        self.kms_key_id = kms_key_id
        self.data_prefix = prefix.strip("/")
        log_prefix = "/".join(p for p in (self.data_prefix, COMPUTE_LOG_FOLDER) if p)
        super().__init__(bucket=bucket, prefix=log_prefix, inst_data=inst_data,
                         upload_extra_args={"ServerSideEncryption": "aws:kms",
                                            "SSEKMSKeyId": kms_key_id}, **kwargs)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        fields = dict(super().config_type())
        fields.pop("upload_extra_args")
        fields["prefix"] = Field(StringSource, is_required=False, default_value="",
                                 description="the data's key prefix; logs go under"
                                 " <prefix>/compute-logs")
        fields["kms_key_id"] = Field(StringSource, description="KMS key of every upload")
        return fields

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> KmsS3ComputeLogManager:
        return cls(inst_data=inst_data, **config_value)
