"""The evidence bucket: large before-states and forensic captures, encrypted and versioned.

A DynamoDB item holds at most 400 KB, and a bucket policy or a console output can be larger; the
incident keeps a reference (``s3://bucket/key?versionId=…``) and rollback reads the object back.
The bucket (created by the deployment template) is versioned, so a reference names exactly what
was captured even if the key is written again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

EVIDENCE_PERMISSIONS = ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion")


@dataclass
class S3EvidenceStore:
    """Implements ``actions.base.EvidenceStore`` on an S3 bucket in the responder's account."""

    bucket: str
    clients: Any  # chalicelib.aws.AwsClients
    region: str | None = None
    kms_key_id: str | None = None

    def _s3(self) -> Any:
        return self.clients.client("s3", account=None, region=self.region)

    def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body, "ContentType": content_type}
        if self.kms_key_id:
            params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
        else:
            params["ServerSideEncryption"] = "AES256"
        response = self._s3().put_object(**params)
        version = response.get("VersionId")
        return f"s3://{self.bucket}/{key}" + (f"?versionId={version}" if version and version != "null" else "")

    def get(self, ref: str) -> bytes:
        parsed = urlparse(ref)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            raise ValueError(f"{ref!r} is not in the evidence bucket {self.bucket}")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": parsed.path.lstrip("/")}
        version = parse_qs(parsed.query).get("versionId")
        if version:
            params["VersionId"] = version[0]
        body: bytes = self._s3().get_object(**params)["Body"].read()
        return body


@dataclass
class MemoryEvidenceStore:
    """For simulations, drills and tests that do not need the bucket."""

    objects: dict[str, bytes] = field(default_factory=dict)

    def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> str:
        ref = f"memory://{key}"
        self.objects[ref] = body
        return ref

    def get(self, ref: str) -> bytes:
        return self.objects[ref]
