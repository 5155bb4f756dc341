"""GuardDuty findings: the values a responder relies on, read from real corpus events."""

from __future__ import annotations

import pytest

from chalicelib.findings import Actor, InvalidEvent, normalize

GD = "guardduty/"


def only(event):
    findings = normalize(event)
    assert len(findings) == 1
    return findings[0]


def test_iam_user_tor_caller(load) -> None:
    finding = only(load(GD + "gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"))
    assert finding.source == "guardduty"
    assert finding.type == "UnauthorizedAccess:IAMUser/TorIPCaller"
    assert finding.id == finding.origin_id == "36b01b60fc22bb4edb19d62d9899e953"
    assert (finding.severity, finding.severity_label) == (5.0, "MEDIUM")
    # The finding's own account, not the envelope's (101010101111): that is where the key lives.
    assert finding.account == "883606788610"
    assert finding.region == "us-east-1"
    assert finding.time == "2017-12-08T15:32:49.862Z"
    assert [(r.kind, r.id, r.name) for r in finding.resources] == [
        ("access-key", "GeneratedFindingAccessKeyId", None),
        ("iam-user", None, "GeneratedFindingUserName"),
    ]
    key = finding.resources[0]
    assert dict(key.details) == {
        "user_name": "GeneratedFindingUserName",
        "user_type": "IAMUser",
        "principal_id": "GeneratedFindingPrincipalId",
    }
    assert finding.actor == Actor(
        user_name="GeneratedFindingUserName",
        user_type="IAMUser",
        principal_id="GeneratedFindingPrincipalId",
        access_key_id="GeneratedFindingAccessKeyId",
        account="883606788610",
        source_ip="198.51.100.0",
    )
    assert finding.sample is True
    assert finding.archived is False
    assert finding.first_seen == finding.last_seen == "2017-12-08T15:32:49Z"
    assert finding.details["action_type"] == "AWS_API_CALL"
    assert finding.details["api"] == "GeneratedFindingAPIName"
    assert finding.details["detector_id"] == "c0b018e3eb2130078632d999e41d4f02"
    # affectedResources keep their CloudFormation-type keys and stay out of the resources.
    assert finding.details["affected_resources"] == {
        "AWS::EC2::Instance": "i-99999999",
        "AWS::CloudTrail::Trail": "GeneratedFindingTrailName",
    }


def test_real_ec2_port_probe(load) -> None:
    finding = only(load(GD + "gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json"))
    assert (finding.type, finding.severity, finding.severity_label) == (
        "Recon:EC2/PortProbeUnprotectedPort",
        2.0,
        "LOW",
    )
    assert finding.count == 743
    assert finding.sample is False
    (instance,) = finding.resources
    assert instance.kind == "ec2-instance"
    assert instance.id == "i-0d6c314027f74dc82"
    assert instance.arn == "arn:aws:ec2:us-east-1:012345678910:instance/i-0d6c314027f74dc82"
    assert dict(instance.tags) == {
        "KubernetesCluster": "k8s.travellogic.info",
        "Name": "nodes.k8s.travellogic.info",
        "k8s.io/role/node": "1",
        "aws:autoscaling:groupName": "nodes.k8s.travellogic.info",
    }
    assert instance.details["security_groups"] == ["sg-67e3bb1d"]
    assert instance.details["vpc_id"] == "vpc-c9c4f0ae"
    assert instance.details["subnet_id"] == "subnet-1637825f"
    assert instance.details["iam_instance_profile_arn"] == (
        "arn:aws:iam::012345678910:instance-profile/nodes.k8s.travellogic.info"
    )
    assert instance.details["public_ips"] == ["54.89.171.133"]
    assert instance.details["image_id"] == "ami-06db9a11"
    assert instance.details["instance_state"] == "running"
    # An inbound probe: the remote IP is who did it.
    assert finding.actor.source_ip == "180.70.170.34"
    assert finding.details["connection_direction"] == "INBOUND"


def test_outbound_connection_names_no_actor_ip(load) -> None:
    finding = only(load(GD + "gd_awssamples-autoresp_Canary-EC2-Stateless-IntegTest.json"))
    assert finding.details["connection_direction"] == "OUTBOUND"
    assert finding.details["remote_ip"] == "0.0.0.0"  # noqa: S104 - the value in the event
    assert finding.actor.source_ip is None  # the instance connected out; the remote end is not the actor
    (instance,) = finding.resources
    assert instance.id == "i-05746eb48123455e0"
    assert instance.details["security_groups"] == ["sg-9918a123"]
    assert dict(instance.tags) == {"Name": "ssh-22-open"}


def test_s3_finding_buckets_keys_and_public_access(load) -> None:
    finding = only(load(GD + "gd_awssamples-autoresp_PenTest-S3-ParrotLinux.json"))
    assert finding.archived is True and finding.sample is True
    kinds = [(r.kind, r.id or r.name) for r in finding.resources]
    # resourceType S3Bucket: the bucket first, then the other blocks the finding carries.
    assert kinds == [
        ("s3-bucket", "bucketName"),
        ("access-key", "GeneratedFindingAccessKeyId"),
        ("iam-user", "GeneratedFindingUserName"),
        ("ec2-instance", "i-99999999"),
    ]
    bucket = finding.resources[0]
    assert bucket.arn == "arn:aws:s3:::bucketName"
    assert dict(bucket.tags) == {"foo": "bar"}
    assert bucket.details["public_access"]["effective_permission"] == "NOT_PUBLIC"
    assert bucket.details["public_access"]["policy_allows_public_read"] is False
    assert bucket.details["public_access"]["bucket_block_public_access"] == {
        "blockPublicAcls": False,
        "ignorePublicAcls": False,
        "blockPublicPolicy": False,
        "restrictPublicBuckets": False,
    }


def test_rds_finding_in_api_shape_envelope(load) -> None:
    finding = only(load(GD + "gd_blu371ck_PascalCase-detail_Discovery-RDS-TorIPCaller.json"))
    assert finding.type == "Discovery:RDS/TorIPCaller"
    assert finding.account == "057372331974"  # detail AccountId; the envelope says 1234567891234
    assert finding.sample is True  # from Service.AdditionalInfo.Value '{"sample":true}'
    assert finding.count == 2
    (db,) = finding.resources
    assert (db.kind, db.name) == ("rds-instance", "generatedfindingdbinstanceid")
    assert db.arn == "arn:aws:rds:us-east-1:123456789000:db:generatedfindingdbinstanceid"
    assert db.account == "123456789000"  # the resource's own ARN says where it lives
    assert len(db.tags) == 4
    assert db.details["cluster_id"] == "GeneratedFindingDBClusterId"
    assert finding.actor.source_ip == "1.2.3.4"


def test_eks_privileged_container(load) -> None:
    finding = only(
        load(GD + "gd_eksblueprints_RAW-API-PascalCase_PrivilegeEscalation-Kubernetes-PrivilegedContainer.json")
    )
    cluster, workload = finding.resources
    assert (cluster.kind, cluster.name) == ("eks-cluster", "guardduty-blueprint")
    assert cluster.arn == "arn:aws:eks:us-east-1:123456789012:cluster/guardduty-blueprint"
    assert cluster.details["vpc_id"] == "vpc-02b68c9ddc1d403ab"
    assert (workload.kind, workload.name, workload.id) == (
        "container",
        "privileged-pod",
        "33a3c89e-3280-474d-b8cb-fdf03394fc15",
    )
    assert workload.details["namespace"] == "argocd"
    assert workload.details["privileged"] is True
    assert workload.details["containers"] == [{"name": "app", "image": "centos", "privileged": True}]
    assert finding.actor.user_type == "KubernetesUser"
    assert finding.actor.user_name == "system:serviceaccount:argocd:argocd-application-controller"
    assert finding.actor.source_ip == "10.0.205.129"
    assert finding.actor.user_agent.startswith("argocd-application-controller/")


@pytest.mark.parametrize(
    ("name", "severity", "label"),
    [
        (
            "gd_panther_high_High-Sev-Finding_PrivilegeEscalation-IAMUser-AdministrativePermissions.json",
            8.0,
            "HIGH",
        ),
        (
            "gd_panther_med_Medium-Sev-Finding_PrivilegeEscalation-IAMUser-AdministrativePermissions.json",
            5.0,
            "MEDIUM",
        ),
        (
            "gd_panther_low_Low-Sev-Finding_PrivilegeEscalation-IAMUser-AdministrativePermissions.json",
            1.0,
            "LOW",
        ),
        ("gd_blu371ck_PascalCase-detail_Trojan-EC2-DNSDataExfiltration.json", 8.0, "HIGH"),
        (
            "gd_panther_critical_Critical-Sev-Finding_AttackSequence-IAM-CompromisedCredentials.json",
            9.0,
            "CRITICAL",
        ),
    ],
)
def test_severity_bands(load, name: str, severity: float, label: str) -> None:
    finding = only(load(GD + name))
    assert (finding.severity, finding.severity_label) == (severity, label)


def test_finding_without_resource_block_keeps_affected_resources(load) -> None:
    finding = only(
        load(GD + "gd_panther_high_High-Sev-Finding_PrivilegeEscalation-IAMUser-AdministrativePermissions.json")
    )
    assert finding.resources == ()
    assert finding.details["api"] == "PutRolePolicy"
    assert finding.details["affected_resources"] == {"AWS::IAM::Role": "arn:aws:iam::123456789012:role/IAMRole"}


def test_trimmed_attack_sequence(load) -> None:
    finding = only(
        load(GD + "gd_panther_critical_Critical-Sev-Finding-As-Sample-Data_AttackSequence-S3-CompromisedData.json")
    )
    assert finding.type == "AttackSequence:S3/CompromisedData"
    assert finding.time == "2025-02-25T20:40:06.765Z"  # published as "2025-02-25 20:40:06.765"
    assert finding.sample is True
    assert finding.details["feature_name"] == "Correlation"
    assert finding.resources == ()  # the top-level resource of a sequence is not a victim


def test_attack_sequence_actors_and_resources(load) -> None:
    """Constructed to the GuardDuty API ``Sequence`` format (tests/data/constructed/README.md)."""
    finding = only(load("constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json"))
    assert finding.type == "AttackSequence:IAM/CompromisedCredentials"
    assert (finding.severity, finding.severity_label) == (9.0, "CRITICAL")
    assert finding.actors == (
        Actor(
            user_name="john_doe",
            user_type="IAMUser",
            principal_id="AIDA3UBBJ2K3TVEXAMPLE",
            access_key_id="AKIAI44QH8DHBEXAMPLE",
            account="111122223333",
            source_ip="198.51.100.23",
        ),
        Actor(
            user_name="ops-admin",
            user_type="AssumedRole",
            principal_id="AROA3UBBJ2K3TVEXAMPLE:backdoor-session",
            access_key_id="ASIAIOSFODNN7EXAMPLE",
            account="111122223333",
            source_ip="203.0.113.77",
            session_issuer_arn="arn:aws:iam::111122223333:role/ops-admin",
        ),
    )
    assert finding.actor == finding.actors[0]
    assert [(r.kind, r.id or r.name) for r in finding.resources] == [
        ("access-key", "AKIAI44QH8DHBEXAMPLE"),
        ("iam-user", "john_doe"),
        ("access-key", "ASIAIOSFODNN7EXAMPLE"),
        ("iam-role", "ops-admin"),
        ("s3-bucket", "finance-exports-prod"),
        ("ec2-instance", "i-0a1b2c3d4e5f67890"),
    ]
    bucket, instance = finding.resources[4], finding.resources[5]
    assert bucket.arn == "arn:aws:s3:::finance-exports-prod"
    assert dict(bucket.tags) == {"data-classification": "confidential"}
    assert instance.arn == "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f67890"
    assert instance.details["iam_instance_profile_arn"] == "arn:aws:iam::111122223333:instance-profile/batch-worker"
    assert dict(instance.tags) == {"Name": "batch-worker"}
    sequence = finding.details["sequence"]
    assert sequence["signal_count"] == 3
    assert sequence["indicators"] == ["ATTACK_TACTIC", "HIGH_RISK_API", "TOR_IP"]
    assert finding.details["asff_copy_truncated"] is False
    assert len(finding.to_dict()["actors"]) == 2


def test_attack_sequence_with_more_actors_than_security_hub_keeps(load) -> None:
    event = load("constructed/gd_constructed_AttackSequence-IAM-CompromisedCredentials_sequence.json")
    sequence = event["detail"]["service"]["detection"]["sequence"]
    template = sequence["actors"][0]
    sequence["actors"] = [
        {**template, "id": f"actor-{i}", "user": {**template["user"], "name": f"u{i}"}} for i in range(11)
    ]
    finding = only(event)
    assert len(finding.actors) == 11
    assert finding.details["asff_copy_truncated"] is True


@pytest.mark.parametrize(
    ("user_type", "expected"),
    [
        ("IAMUser", ("iam-user", "GeneratedFindingUserName")),
        ("AssumedRole", ("iam-role", "GeneratedFindingUserName")),
        ("Root", None),
        ("FederatedUser", None),
    ],
)
def test_access_key_principal_by_user_type(load, user_type: str, expected) -> None:
    event = load(GD + "gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json")
    event["detail"]["resource"]["accessKeyDetails"]["userType"] = user_type
    finding = only(event)
    principals = [(r.kind, r.name) for r in finding.resources if r.kind != "access-key"]
    assert principals == ([expected] if expected else [])
    assert finding.actor.user_type == user_type
    assert finding.resources[0].details["user_type"] == user_type


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("type"), "GuardDuty finding: detail.type is missing or invalid"),
        (lambda d: d.pop("id"), "GuardDuty finding: detail.id is missing or invalid"),
        (lambda d: d.update(severity="high"), "GuardDuty finding: detail.severity is missing or invalid"),
        (lambda d: d.update(updatedAt="yesterday", createdAt=None), None),
    ],
)
def test_malformed_guardduty_detail(load, mutate, message) -> None:
    event = load(GD + "gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json")
    mutate(event["detail"])
    if message is None:  # an unreadable updatedAt falls back to the envelope time
        assert only(event).time == "2017-11-01T21:31:05Z"
        return
    with pytest.raises(InvalidEvent) as caught:
        normalize(event)
    assert str(caught.value) == message


def test_detail_that_is_not_an_object(load) -> None:
    event = load(GD + "gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json")
    event["detail"] = ["not", "an", "object"]
    with pytest.raises(InvalidEvent, match=r"GuardDuty finding: detail is missing"):
        normalize(event)
