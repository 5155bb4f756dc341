"""PatternSet against moto's EventBridge matcher on the real corpus events, at 10, 100 and 1,000 patterns.

Run: ``.venv/bin/python benchmarks/bench_patterns.py`` (about a minute). Prints events/s for both
matchers and their ratio, our per-event cost next to ``json.loads`` of the event's text, and the compile
time of the 1,000-pattern set. It also checks that both matchers agree on every (pattern, event) pair
except where moto is known to differ from AWS, and exits non-zero otherwise.

The library is generated from realistic playbook shapes (GuardDuty by type prefix / severity /
resource type, CloudTrail by event source + name with ``errorCode`` absent, Security Hub by severity
label / product / type prefix, ``anything-but`` on accounts, ``$or``), with distinct values so that the
patterns do not collapse into a few.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.patterns import PatternSet, compile_pattern  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "corpus"
SIZES = (10, 100, 1000)

GUARDDUTY_FAMILIES = [
    "Backdoor:EC2/",
    "Behavior:EC2/",
    "CryptoCurrency:EC2/",
    "Impact:EC2/",
    "Recon:EC2/",
    "Trojan:EC2/",
    "UnauthorizedAccess:EC2/",
    "UnauthorizedAccess:IAMUser/",
    "Recon:IAMUser/",
    "Discovery:IAMUser/",
    "Persistence:IAMUser/",
    "PrivilegeEscalation:IAMUser/",
    "Stealth:IAMUser/",
    "CredentialAccess:IAMUser/",
    "Exfiltration:S3/",
    "Impact:S3/",
    "Discovery:S3/",
    "PenTest:S3/",
    "Policy:S3/",
    "Stealth:S3/",
    "PrivilegeEscalation:Kubernetes/",
    "Execution:Kubernetes/",
    "Discovery:Kubernetes/",
    "Execution:Runtime/",
    "CryptoCurrency:Runtime/",
    "Backdoor:Lambda/",
    "Trojan:Lambda/",
    "Discovery:RDS/",
    "CredentialAccess:RDS/",
    "AttackSequence:",
    "Canary:EC2/",
    "Policy:IAMUser/",
    "DefenseEvasion:EC2/",
    "Execution:EC2/",
]
GUARDDUTY_TYPES = [
    "Backdoor:EC2/C&CActivity.B!DNS",
    "Backdoor:EC2/DenialOfService.Tcp",
    "CryptoCurrency:EC2/BitcoinTool.B!DNS",
    "Recon:EC2/PortProbeUnprotectedPort",
    "Recon:EC2/Portscan",
    "Trojan:EC2/DNSDataExfiltration",
    "Trojan:EC2/BlackholeTraffic",
    "UnauthorizedAccess:EC2/SSHBruteForce",
    "UnauthorizedAccess:EC2/RDPBruteForce",
    "UnauthorizedAccess:EC2/TorClient",
    "UnauthorizedAccess:IAMUser/TorIPCaller",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    "Recon:IAMUser/MaliciousIPCaller.Custom",
    "PrivilegeEscalation:IAMUser/AdministrativePermissions",
    "Policy:IAMUser/RootCredentialUsage",
    "Stealth:IAMUser/CloudTrailLoggingDisabled",
    "PenTest:S3/ParrotLinux",
    "Exfiltration:S3/AnomalousBehavior",
    "AttackSequence:IAM/CompromisedCredentials",
    "AttackSequence:S3/CompromisedData",
]
RESOURCE_TYPES = ["Instance", "AccessKey", "S3Bucket", "EKSCluster", "Lambda", "RDSDBInstance", "Container"]
CLOUDTRAIL_CALLS = {
    "iam": [
        "CreateUser",
        "CreateAccessKey",
        "AttachUserPolicy",
        "PutUserPolicy",
        "PutRolePolicy",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "DeleteLoginProfile",
        "AddUserToGroup",
        "UpdateAssumeRolePolicy",
        "CreateRole",
    ],
    "s3": [
        "PutBucketPolicy",
        "PutBucketAcl",
        "DeleteBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "CreateBucket",
        "DeleteBucket",
        "PutBucketLogging",
        "PutBucketVersioning",
    ],
    "ec2": [
        "RunInstances",
        "AuthorizeSecurityGroupIngress",
        "ModifyInstanceAttribute",
        "CreateKeyPair",
        "GetPasswordData",
        "ModifySnapshotAttribute",
        "CreateImage",
        "StopInstances",
    ],
    "cloudtrail": ["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors"],
    "organizations": ["LeaveOrganization", "InviteAccountToOrganization"],
    "lambda": ["CreateFunctionUrlConfig", "AddPermission20150331v2", "UpdateFunctionCode20150331v2"],
    "kms": ["ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy"],
    "guardduty": [
        "DeleteDetector",
        "UpdateDetector",
        "CreateSampleFindings",
        "DisassociateFromMasterAccount",
    ],
    "signin": ["ConsoleLogin"],
    "sts": ["GetFederationToken", "AssumeRole"],
    "route53": ["ChangeResourceRecordSets"],
    "glue": ["PutResourcePolicy"],
    "secretsmanager": ["GetSecretValue", "PutResourcePolicy"],
}
IDENTITY_TYPES = ["Root", "IAMUser", "AssumedRole", "FederatedUser"]
SEVERITY_LABELS = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]
PRODUCTS = [
    "GuardDuty",
    "Inspector",
    "Security Hub",
    "Config",
    "Macie",
    "IAM Access Analyzer",
    "Firewall Manager",
]
FINDING_TYPES = [
    "Software and Configuration Checks/Industry and Regulatory Standards/",
    "Software and Configuration Checks/Vulnerabilities/CVE",
    "Software and Configuration Checks/AWS Security Best",
    "TTPs/Discovery/",
    "TTPs/Initial Access/",
    "Unusual Behaviors/User/",
    "Effects/Data Exposure/",
    "Sensitive Data Identifications/",
    "TTPs/Defense Evasion/",
]
ACCOUNTS = [f"{n:012d}" for n in (111111111111, 123456789012, 210987654321, 333333333333, 444455556666)]


def _guardduty(i: int, r: random.Random) -> dict[str, Any]:
    family = GUARDDUTY_FAMILIES[i % len(GUARDDUTY_FAMILIES)]
    severity = round(1 + (i * 7 % 80) / 10, 1)
    shape = i % 4
    detail: dict[str, Any] = {"type": [{"prefix": family}]}
    if shape == 0:
        detail["severity"] = [{"numeric": [">=", severity]}]
    elif shape == 1:
        detail = {
            "type": r.sample(GUARDDUTY_TYPES, 2),
            "resource": {"resourceType": [r.choice(RESOURCE_TYPES)]},
        }
        detail["severity"] = [{"numeric": [">", severity - 1, "<=", severity + 2]}]
    elif shape == 2:
        return {
            "source": ["aws.guardduty"],
            "account": [{"anything-but": r.sample(ACCOUNTS, 2)}],
            "detail": {**detail, "severity": [{"numeric": [">", severity]}]},
        }
    else:
        return {
            "source": ["aws.guardduty"],
            "$or": [
                {"detail": {"severity": [{"numeric": [">=", 7 + severity / 10]}]}},
                {"detail": {"type": [{"prefix": family}, r.choice(GUARDDUTY_TYPES)]}},
            ],
        }
    return {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"], "detail": detail}


def _cloudtrail(i: int, r: random.Random) -> dict[str, Any]:
    service = list(CLOUDTRAIL_CALLS)[i % len(CLOUDTRAIL_CALLS)]
    names = r.sample(CLOUDTRAIL_CALLS[service], min(2, len(CLOUDTRAIL_CALLS[service])))
    detail: dict[str, Any] = {"eventSource": [f"{service}.amazonaws.com"], "eventName": names}
    shape = i % 3
    if shape == 0:
        detail["errorCode"] = [{"exists": False}]
    elif shape == 1:
        detail["userIdentity"] = {"type": [IDENTITY_TYPES[i % len(IDENTITY_TYPES)]]}
    else:
        detail["sourceIPAddress"] = [{"anything-but": {"prefix": f"10.{i % 256}."}}]
    return {"source": [f"aws.{service}"], "detail-type": ["AWS API Call via CloudTrail"], "detail": detail}


def _securityhub(i: int, r: random.Random) -> dict[str, Any]:
    findings: dict[str, Any] = {"Severity": {"Label": r.sample(SEVERITY_LABELS, 1 + i % 2)}}
    if i % 2:
        findings["ProductName"] = [PRODUCTS[i % len(PRODUCTS)]]
        findings["Workflow"] = {"Status": ["NEW"]}
    else:
        findings["Types"] = [{"prefix": FINDING_TYPES[i % len(FINDING_TYPES)]}]
        findings["RecordState"] = ["ACTIVE"]
    return {
        "source": ["aws.securityhub"],
        "detail-type": ["Security Hub Findings - Imported", "Security Hub Findings - Custom Action"][i % 2 : i % 2 + 1],
        "detail": {"findings": findings},
    }


def library(size: int) -> dict[str, dict[str, Any]]:
    """``size`` distinct patterns: 35% GuardDuty, 35% CloudTrail, 30% Security Hub (deterministic)."""
    r = random.Random(size)
    makers: list[tuple[str, Callable[[int, random.Random], dict[str, Any]]]] = [
        ("gd", _guardduty),
        ("ct", _cloudtrail),
        ("gd", _guardduty),
        ("ct", _cloudtrail),
        ("sh", _securityhub),
        ("gd", _guardduty),
        ("ct", _cloudtrail),
        ("sh", _securityhub),
        ("gd", _guardduty),
        ("ct", _cloudtrail),
        ("sh", _securityhub),
        ("gd", _guardduty),
        ("ct", _cloudtrail),
        ("sh", _securityhub),
        ("gd", _guardduty),
        ("ct", _cloudtrail),
        ("sh", _securityhub),
        ("gd", _guardduty),
        ("ct", _cloudtrail),
        ("sh", _securityhub),
    ]
    out: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for i in itertools.count():
        if len(out) == size:
            return out
        kind, make = makers[i % len(makers)]
        pattern = make(i, r)
        text = json.dumps(pattern, sort_keys=True)
        if text not in seen:
            seen.add(text)
            out[f"{kind}-{len(out):04d}"] = pattern
    raise AssertionError("unreachable")


def corpus_events() -> list[tuple[str, dict[str, Any], str]]:
    """(name, event, compact JSON text) for every real event of the corpus."""
    out = []
    for directory in ("guardduty", "cloudtrail", "securityhub", "securityhub-ocsf"):
        for path in sorted((CORPUS / directory).glob("*.json")):
            event = json.loads(path.read_text(encoding="utf-8"))
            out.append((path.name, event, json.dumps(event, separators=(",", ":"))))
    return out


def best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


# --- where moto is known to differ from AWS --------------------------------------------------------


def _leaf_paths(pattern: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list]]:
    for key, value in pattern.items():
        if key == "$or":
            for branch in value:
                yield from _leaf_paths(branch, prefix)
        elif isinstance(value, dict):
            yield from _leaf_paths(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _crosses_array(event: Any, path: tuple[str, ...]) -> bool:
    """Whether the path goes through an array (of objects) before its last key."""
    current = [event]
    for depth, key in enumerate(path):
        following = []
        for value in current:
            if isinstance(value, list):
                if depth:
                    return True
                continue
            if isinstance(value, dict) and key in value:
                following.append(value[key])
        current = following
    return False


def known_moto_gap(pattern: dict[str, Any], event: dict[str, Any]) -> str | None:
    for path, clause in _leaf_paths(pattern):
        if _crosses_array(event, path):
            return "arrays of objects (moto does not look inside them)"
        value: Any = event
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value == [] and any(isinstance(c, dict) and "exists" in c for c in clause):
            return "exists on an empty array"
        if any(isinstance(c, dict) and "cidr" in c for c in clause):
            return "CIDR with host bits"
    return None


def _source(name: str) -> str:
    return {"gd": "GuardDuty", "ct": "CloudTrail", "sh": "Security Hub", "sh2": "Security Hub OCSF"}[name.split("_")[0]]


def main() -> int:
    events = corpus_events()
    n = len(events)
    texts = [text for _, _, text in events]
    loads_s = best_of(20, lambda: [json.loads(t) for t in texts])
    print(f"{n} real corpus events; json.loads of their text: {loads_s / n * 1e6:.1f} µs/event on average\n")

    start = time.perf_counter()
    from moto.events.models import EventPattern

    print(f"(importing moto's matcher: {time.perf_counter() - start:.2f} s)\n")
    full = library(max(SIZES))
    compile_s = best_of(3, lambda: PatternSet(full))
    print(f"compiling the {len(full)}-pattern PatternSet: {compile_s * 1e3:.0f} ms (best of 3)\n")

    columns = ("patterns", "ours ev/s", "moto ev/s", "ratio", "ours µs/ev", "json.loads µs/ev")
    print(" | ".join(f"{c:>{w}}" for c, w in zip(columns, (8, 10, 9, 7, 10, 16), strict=True)))
    print("-" * 79)
    for size in SIZES:
        named = library(size)
        ours = PatternSet(named)
        theirs = [EventPattern.load(json.dumps(p)) for p in named.values()]

        def run_ours(index: PatternSet = ours) -> None:
            for _, event, _ in events:
                index.match(event)

        def run_moto(patterns: list[Any] = theirs) -> None:
            for _, event, _ in events:
                [p for p in patterns if p.matches_event(event)]

        ours_s = best_of(7, run_ours)
        moto_s = best_of(3 if size <= 100 else 1, run_moto)
        print(
            f"{size:>8} | {n / ours_s:>10,.0f} | {n / moto_s:>9,.0f} | {moto_s / ours_s:>6,.0f}x | "
            f"{ours_s / n * 1e6:>10.1f} | {loads_s / n * 1e6:.1f}"
        )

    index = PatternSet(full)
    print(f"\nper source at {len(full)} patterns (µs per event, best of 50):")
    print(f"{'source':>17} | {'events':>6} | {'ours':>6} | {'json.loads':>10} | ours faster")
    by_source: dict[str, list[tuple[float, float]]] = {}
    for name, event, text in events:
        ours_us = best_of(50, lambda e=event: index.match(e)) * 1e6
        loads_us = best_of(50, lambda t=text: json.loads(t)) * 1e6
        by_source.setdefault(_source(name), []).append((ours_us, loads_us))
    for source, rows in by_source.items():
        ours_avg = sum(r[0] for r in rows) / len(rows)
        loads_avg = sum(r[1] for r in rows) / len(rows)
        faster = sum(r[0] < r[1] for r in rows)
        print(f"{source:>17} | {len(rows):>6} | {ours_avg:>6.1f} | {loads_avg:>10.1f} | {faster}/{len(rows)}")

    # agreement with moto, and of the index with the single-pattern path
    disagreements: Counter[str] = Counter()
    unexplained: list[tuple[str, str, bool, bool]] = []
    moto_full = {name: EventPattern.load(json.dumps(p)) for name, p in full.items()}
    single = {name: compile_pattern(p) for name, p in full.items()}
    index_differences = 0
    matches = 0
    for event_name, event, _ in events:
        matched = index.match(event)
        matches += len(matched)
        index_differences += matched != [name for name in index.names if single[name].matches(event)]
        for name, moto_pattern in moto_full.items():
            ours_says, moto_says = name in matched, moto_pattern.matches_event(event)
            if ours_says != moto_says:
                gap = known_moto_gap(full[name], event)
                disagreements[gap or "unexplained"] += 1
                if gap is None:
                    unexplained.append((name, event_name, ours_says, moto_says))
    pairs = n * len(full)
    print(
        f"\nagreement with moto on {pairs:,} (pattern, event) pairs at {len(full)} patterns "
        f"({matches:,} matches): {sum(disagreements.values())} disagreements"
    )
    for reason, count in disagreements.most_common():
        print(f"  {count:>6}  {reason}")
    print(f"PatternSet.match vs compile_pattern().matches on every event: {index_differences} differences")
    assert not unexplained, f"moto and Clampdown disagree outside moto's known gaps: {unexplained[:5]}"
    assert index_differences == 0, "the index disagrees with the single-pattern path"
    return 0


if __name__ == "__main__":
    sys.exit(main())
