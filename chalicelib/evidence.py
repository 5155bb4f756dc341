"""The evidence bucket: large states, policy documents and forensic captures, encrypted and versioned.

A DynamoDB item holds at most 400 KB, and a bucket policy, a forensic capture or a console output can
be large; the incident keeps a reference (``s3://bucket/key?versionId=…``) and rollback reads the
object back. The bucket (created by the deployment template) is versioned, so a reference names
exactly what was captured even if the key is written again.

One key scheme for everything stored (:func:`evidence_key`), one sanitiser for its parts, and one
shape of reference kept in records (:func:`offload`, :func:`is_ref`, :func:`load`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

EVIDENCE_PERMISSIONS = ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion")
#: Anything a record would hold (a state, the calls made, undo steps) larger than this goes to the
#: evidence store when there is one: a record stays a few KB whatever the policies it touched.
INLINE_LIMIT = 4 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")
_REF_KEYS = frozenset({"evidence_key", "bytes", "sha256"})


class EvidenceStore(Protocol):
    """Where large states and captures go (implemented by the two stores below)."""

    def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> str: ...

    def get(self, ref: str) -> bytes: ...

    def find(self, key: str) -> str | None:
        """The reference of ``key`` if the store holds it (how a re-run finds what it stored)."""
        ...


def safe_part(text: str, limit: int = 200) -> str:
    """One part of a key: characters every store accepts, anything else ``_``; never empty or ``..``."""
    cleaned = _UNSAFE.sub("_", text)[:limit]
    return cleaned if cleaned.strip(".") else "_"


def evidence_key(incident_id: str, action: str, subject: str, *leaf: str) -> str:
    """``incidents/<incident>/<action>/<subject>/<leaf>…``: what is stored, for which incident and resource."""
    parts = ("incidents", incident_id, action, subject, *leaf)
    return "/".join(safe_part(p) for p in parts)


def json_body(value: Any) -> bytes:
    return json.dumps(value, default=str, sort_keys=True).encode()


def offload(store: EvidenceStore, key_stem: str, value: Any) -> dict[str, Any]:
    """Store ``value`` as JSON under ``<key_stem>-<sha256 prefix>.json``; the reference a record keeps.

    The digest in the key makes writing the same value twice write the same object, and writing a
    different value never replace an object an earlier record refers to (in a store without versions).
    """
    body = json_body(value)
    digest = hashlib.sha256(body).hexdigest()
    ref = store.put(f"{key_stem}-{digest[:16]}.json", body)
    return {"evidence_key": ref, "bytes": len(body), "sha256": digest}


def is_ref(value: Any) -> bool:
    """Is ``value`` a reference :func:`offload` returned (rather than the value itself)?"""
    return isinstance(value, Mapping) and "evidence_key" in value and set(value) <= _REF_KEYS


def load(store: EvidenceStore | None, value: Any) -> Any:
    """``value``, read back from the store when it is a reference (``LookupError`` without a store)."""
    if not is_ref(value):
        return value
    if store is None:
        raise LookupError(f"the value is in the evidence bucket ({value['evidence_key']}) and no store is configured")
    return json.loads(store.get(str(value["evidence_key"])))


@dataclass
class S3EvidenceStore:
    """Implements :class:`EvidenceStore` on an S3 bucket in the responder's account."""

    bucket: str
    clients: Any  # chalicelib.aws.AwsClients
    region: str | None = None
    kms_key_id: str | None = None

    def _s3(self) -> Any:
        return self.clients.client("s3", account=None, region=self.region)

    def _ref(self, key: str, version: str | None) -> str:
        return f"s3://{self.bucket}/{key}" + (f"?versionId={version}" if version and version != "null" else "")

    def put(self, key: str, body: bytes, *, content_type: str = "application/json") -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body, "ContentType": content_type}
        if self.kms_key_id:
            params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
        else:
            params["ServerSideEncryption"] = "AES256"
        response = self._s3().put_object(**params)
        return self._ref(key, response.get("VersionId"))

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

    def find(self, key: str) -> str | None:
        """``HeadObject`` (authorized by ``s3:GetObject``). Without ``s3:ListBucket`` S3 answers 403, not
        404, for a missing key: both mean "not stored"."""
        try:
            head = self._s3().head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            response = getattr(exc, "response", None)
            code = str(((response or {}).get("Error") or {}).get("Code")) if isinstance(response, Mapping) else ""
            if code in ("NoSuchKey", "404", "NotFound", "AccessDenied", "403"):
                return None
            raise
        return self._ref(key, head.get("VersionId"))


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

    def find(self, key: str) -> str | None:
        ref = f"memory://{key}"
        return ref if ref in self.objects else None
