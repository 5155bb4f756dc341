"""EC2 containment: isolate, snapshot, capture forensics, stop, detach the instance profile.

``ec2.isolate-instance`` does what AWS's ``AWSSupport-ContainEC2Instance`` runbook does (two-step
security-group swap of every network interface, Auto Scaling standby) and goes further: load balancer
target groups, termination protection and the OS shutdown behaviour, the rules of reused groups
checked and repaired, and a rollback that puts each of them back as it was. Evidence (snapshots,
captures) is never deleted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Generator, Iterable, Mapping
from typing import Any, ClassVar

from chalicelib.actions._ec2_common import (
    InstanceAction,
    asg_membership,
    asg_name_from_tags,
    instance_id,
    is_planned,
    known_id,
    response_value,
    tag_value,
)
from chalicelib.actions.base import ActionContext, ActionError, ApiCall, CallPlan
from chalicelib.actions.registry import register
from chalicelib.evidence import evidence_key
from chalicelib.findings.model import Resource

MANAGED_TAG = "clampdown:managed"
INCIDENT_TAG = "clampdown:incident"
FINDING_TAG = "clampdown:finding"
INSTANCE_TAG = "clampdown:instance"
ANY_V4, ANY_V6 = "0.0.0.0/0", "::/0"
#: Auto Scaling lifecycle states in which the group neither serves traffic through nor replaces the instance.
OUT_OF_SERVICE = ("EnteringStandby", "Standby", "Detaching", "Detached")
_RULE_KEYS = ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs")
_PROFILE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:instance-profile/[\w+=,.@/-]{1,512}")
_PROFILE = r"^(arn:aws[a-z-]*:iam::\d{12}:instance-profile/[\w+=,.@/-]{1,512}|[\w+=,.@-]{1,128})$"
_GROUP_PREFIX = re.compile(r"(?!sg-)[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
_ASG_MODES = ("standby", "detach", "leave")
#: A call plan that ends with a security-group id (found, or the response of its creation).
GroupPlan = Generator[ApiCall, Any, str]


def _rules(permissions: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Security-group rules as AWS describes them, without empty fields (usable to revoke them)."""
    return [
        {k: p[k] for k in _RULE_KEYS if p.get(k) not in (None, [], "")}
        for p in permissions or ()
        if p.get("IpProtocol")
    ]


def _open_to(rules: Iterable[Mapping[str, Any]]) -> set[str]:
    """Which of 0.0.0.0/0 and ::/0 the rules allow for all protocols and ports."""
    out: set[str] = set()
    for rule in rules:
        if str(rule.get("IpProtocol")) == "-1":
            out |= {r.get("CidrIp", "") for r in rule.get("IpRanges", [])}
            out |= {r.get("CidrIpv6", "") for r in rule.get("Ipv6Ranges", [])}
    return out & {ANY_V4, ANY_V6}


def _all_traffic(ranges: Iterable[str]) -> dict[str, Any]:
    wanted = set(ranges)
    rule: dict[str, Any] = {"IpProtocol": "-1"}
    if ANY_V4 in wanted:
        rule["IpRanges"] = [{"CidrIp": ANY_V4}]
    if ANY_V6 in wanted:
        rule["Ipv6Ranges"] = [{"CidrIpv6": ANY_V6}]
    return rule


def _group_state(group: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if group is None:
        return None
    return {
        "id": group["GroupId"],
        "ingress": _rules(group.get("IpPermissions")),
        "egress": _rules(group.get("IpPermissionsEgress")),
    }


def _decrements(asg: Mapping[str, Any]) -> bool:
    """Leaving the group lowers its desired capacity when that stays at or above the minimum."""
    return bool(asg.get("desired_capacity", 0) > asg.get("min_size", 0))


def _target_key(target: Mapping[str, Any]) -> tuple[str, str, Any, Any]:
    return (target["target_group_arn"], target["id"], target.get("port"), target.get("availability_zone"))


def _by_group(targets: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for t in sorted(targets, key=lambda t: tuple(str(v) for v in _target_key(t))):
        spec: dict[str, Any] = {"Id": t["id"]}
        if t.get("port") is not None:
            spec["Port"] = t["port"]
        if t.get("availability_zone"):
            spec["AvailabilityZone"] = t["availability_zone"]
        out.setdefault(t["target_group_arn"], []).append(spec)
    return out


@register
class IsolateInstance(InstanceAction):
    """Cut the instance's network traffic, existing connections included, and keep it for forensics.

    Security groups do not filter the link-local services (instance metadata, the VPC's DNS resolver,
    time sync): DNS tunnelling stays possible, and the metadata service still hands out the role's
    credentials (``ec2.detach-instance-profile`` stops that).

    Order, and why:

    1. termination protection on and OS-initiated shutdown set to *stop* (evidence survives an
       attacker's ``shutdown`` and a hasty ``TerminateInstances``);
    2. Auto Scaling Standby (or detach) before touching the network or the load balancers, so failing
       health checks cannot make the group terminate and replace the instance; the desired capacity
       is lowered when the group stays at or above its minimum, else the group launches a replacement;
    3. deregister from every ELBv2 target group holding the instance (or one of its IPs), so no load
       balancer keeps sending it traffic (an ALB whose targets are all unhealthy sends to all). Standby
       already deregisters it from the group's own target groups; deregistering a target that is
       draining or gone is accepted by ELBv2, so these calls stay the same whatever the group did;
    4. per network interface: first the VPC's *all-access* group (all traffic, IPv4 and IPv6, both
       ways), which makes the interface's existing flows untracked, then at once the *isolation*
       group (no rules at all), which drops them. Security-group changes alone do not cut tracked
       connections. ``ModifyNetworkInterfaceAttribute`` is used per interface because
       ``ModifyInstanceAttribute(Groups=...)`` only concerns the primary interface (AWS asks for an
       interface id when there are several), and interfaces may sit in different VPCs. The two steps
       are interleaved per interface, so an interface is open for the duration of one call and a
       failure leaves at most one interface open (a re-run moves it straight to isolation).

    The two groups are found (by name) or created once per VPC, tagged ``clampdown:managed``, and
    left in place by rollback (other isolated instances may use them). Rules found on the isolation
    group are revoked; missing all-access rules are added.
    """

    name = "ec2.isolate-instance"
    summary = (
        "Isolate the instance: termination protection, out of its target groups and Auto Scaling group "
        "(Standby), then each network interface moved through an all-access group to a no-rules group, "
        "which also cuts connections already open."
    )
    permissions = (
        "ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup", "ec2:CreateTags",
        "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress",
        "ec2:ModifyNetworkInterfaceAttribute", "ec2:ModifyInstanceAttribute",
        "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:EnterStandby", "autoscaling:ExitStandby",
        "autoscaling:DetachInstances", "autoscaling:AttachInstances",
        "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets",
    )  # fmt: skip
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "isolation_group_name": {
                "type": "string",
                "pattern": r"^(?!sg-)[A-Za-z0-9][A-Za-z0-9._-]{0,150}$",
                "default": "clampdown-isolation",
                "description": "Name prefix of the per-VPC groups: '<name>-<vpc-id>' (no rules) and "
                "'<name>-all-access-<vpc-id>' (the transit group).",
            },
            "asg": {
                "enum": ["standby", "detach", "leave"],
                "default": "standby",
                "description": "What to do when the instance is in service in an Auto Scaling group: Standby "
                "(stays a member, rollback exits Standby), detach (rollback attaches it again) or leave it.",
            },
            "deregister_targets": {"type": "boolean", "default": True},
            "termination_protection": {
                "type": "boolean",
                "default": True,
                "description": "Turn on DisableApiTermination and make an OS-initiated shutdown stop, not "
                "terminate, the instance (both put back by rollback).",
            },
        },
    }

    # -- parameters ----------------------------------------------------------------------
    @property
    def _mode(self) -> str:
        mode = str(self.params.get("asg", "standby"))
        if mode not in _ASG_MODES:
            raise ActionError("InvalidParameter", f"asg must be one of {', '.join(_ASG_MODES)}")
        return mode

    @property
    def _protect_flag(self) -> bool:
        return bool(self.params.get("termination_protection", True))

    def group_name(self, vpc: str, kind: str) -> str:
        prefix = str(self.params.get("isolation_group_name") or "clampdown-isolation")
        if not _GROUP_PREFIX.fullmatch(prefix):  # parameters may be rendered from a finding: check again
            raise ActionError("InvalidParameter", "isolation_group_name must be letters, digits, '.', '_' or '-'")
        return f"{prefix}-{vpc}" if kind == "isolation" else f"{prefix}-all-access-{vpc}"

    # -- state ---------------------------------------------------------------------------
    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        iid = instance_id(target)
        instance = self.instance(ctx, target)
        ec2 = ctx.client("ec2", target)
        enis = sorted(
            instance.get("NetworkInterfaces", []), key=lambda e: (e.get("Attachment") or {}).get("DeviceIndex", 0)
        )
        if not enis:
            raise ActionError("NoNetworkInterfaces", f"instance {iid} has no network interface to isolate")
        interfaces = [
            {
                "id": eni["NetworkInterfaceId"],
                "vpc_id": eni.get("VpcId") or instance.get("VpcId"),
                "groups": [g["GroupId"] for g in eni.get("Groups", [])],
            }
            for eni in enis
        ]
        state: dict[str, Any] = {
            "instance_id": iid,
            "network_interfaces": interfaces,
            "groups": self._read_groups(ec2, sorted({i["vpc_id"] for i in interfaces})),
        }
        if self._protect_flag:
            attribute = ec2.describe_instance_attribute
            state["termination_protection"] = bool(
                attribute(InstanceId=iid, Attribute="disableApiTermination")["DisableApiTermination"]["Value"]
            )
            state["shutdown_behavior"] = attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")[
                "InstanceInitiatedShutdownBehavior"
            ]["Value"]
        if self._mode != "leave":
            state["auto_scaling"] = self._read_asg(ctx, target, iid)
        if self.params.get("deregister_targets", True):
            addresses = {iid} | {
                a for eni in enis for a in [p.get("PrivateIpAddress") for p in eni.get("PrivateIpAddresses", [])]
            }
            addresses |= {a.get("Ipv6Address") for eni in enis for a in eni.get("Ipv6Addresses", [])}
            state["targets"] = self._read_targets(ctx, target, iid, {i["vpc_id"] for i in interfaces}, addresses)
        return self.remember(state)

    def _read_groups(self, ec2: Any, vpcs: list[str]) -> dict[str, dict[str, Any]]:
        names = {self.group_name(v, k): (v, k) for v in vpcs for k in ("isolation", "all_access")}
        found: dict[tuple[str, str], dict[str, Any]] = {}
        filters = [{"Name": "vpc-id", "Values": vpcs}, {"Name": "group-name", "Values": sorted(names)}]
        for page in ec2.get_paginator("describe_security_groups").paginate(Filters=filters):
            for group in page.get("SecurityGroups", []):
                where = names.get(group.get("GroupName", ""))
                if where and where[0] == group.get("VpcId"):
                    found[where] = group
        return {v: {k: _group_state(found.get((v, k))) for k in ("isolation", "all_access")} for v in vpcs}

    def _read_asg(self, ctx: ActionContext, target: Resource | None, iid: str) -> dict[str, Any] | None:
        membership = asg_membership(ctx, target, iid)
        if membership:
            groups = ctx.client("autoscaling", target).describe_auto_scaling_groups(
                AutoScalingGroupNames=[membership["name"]]
            )["AutoScalingGroups"]
            if groups:
                membership.update(min_size=groups[0]["MinSize"], desired_capacity=groups[0]["DesiredCapacity"])
        return membership

    def _read_targets(
        self, ctx: ActionContext, target: Resource | None, iid: str, vpcs: set[str], addresses: set[str | None]
    ) -> list[dict[str, Any]]:
        """Registrations of the instance (instance targets) or of its addresses (ip targets) in its VPCs."""
        elbv2 = ctx.client("elbv2", target)
        out: list[dict[str, Any]] = []
        for page in elbv2.get_paginator("describe_target_groups").paginate():
            for group in page.get("TargetGroups", []):
                kind = group.get("TargetType", "instance")
                if group.get("VpcId") not in vpcs or kind not in ("instance", "ip"):
                    continue
                arn = group["TargetGroupArn"]
                wanted = {iid} if kind == "instance" else addresses - {iid, None}
                for item in elbv2.describe_target_health(TargetGroupArn=arn).get("TargetHealthDescriptions", []):
                    spec, health = item.get("Target", {}), item.get("TargetHealth", {})
                    if spec.get("Id") not in wanted or health.get("State") == "draining":
                        continue  # draining: already deregistered, the load balancer is finishing requests
                    if health.get("Reason") == "Target.NotRegistered":
                        continue
                    record = {"target_group_arn": arn, "id": spec["Id"], "port": spec.get("Port")}
                    if spec.get("AvailabilityZone"):
                        record["availability_zone"] = spec["AvailabilityZone"]
                    out.append(record)
        return sorted(out, key=lambda t: tuple(str(v) for v in _target_key(t)))

    def _open_parts(self, state: Mapping[str, Any]) -> list[str]:
        """What is not contained yet (empty when contained)."""
        parts = []
        for eni in state.get("network_interfaces", []):
            isolation = (state.get("groups", {}).get(eni["vpc_id"]) or {}).get("isolation")
            if not isolation or isolation["ingress"] or isolation["egress"] or eni["groups"] != [isolation["id"]]:
                parts.append(eni["id"])
        if "termination_protection" in state and (
            not state["termination_protection"] or state.get("shutdown_behavior") == "terminate"
        ):
            parts.append("termination protection")
        asg = state.get("auto_scaling")
        if asg and asg["lifecycle_state"] not in OUT_OF_SERVICE:
            parts.append(f"Auto Scaling group {asg['name']}")
        if state.get("targets"):
            parts.append("target groups")
        return parts

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return not self._open_parts(state)

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        if before is None:
            return None
        after = json.loads(json.dumps(before))
        for eni in after["network_interfaces"]:
            isolation = after["groups"][eni["vpc_id"]]["isolation"]
            eni["groups"] = [isolation["id"] if isolation else f"<isolation group of {eni['vpc_id']}>"]
        for groups in after["groups"].values():
            if groups["isolation"]:
                groups["isolation"].update(ingress=[], egress=[])
        if "termination_protection" in after:
            after.update(termination_protection=True, shutdown_behavior="stop")
        asg = after.get("auto_scaling")
        if asg and asg["lifecycle_state"] == "InService":
            if self._mode == "detach":
                after["auto_scaling"] = None  # no longer a member
            else:
                asg["lifecycle_state"] = "Standby"
                if _decrements(asg):
                    asg["desired_capacity"] -= 1
        if "targets" in after:
            after["targets"] = []
        return dict(after)

    def written_part(self, state: Mapping[str, Any]) -> Any:
        """What isolation sets on this instance: not the isolation groups' rules (shared by every isolated
        instance of the VPC) nor its Auto Scaling group's sizes (the group scales on its own)."""
        asg = state.get("auto_scaling")
        parts = ("network_interfaces", "termination_protection", "shutdown_behavior", "targets")
        kept = {k: state[k] for k in parts if k in state}
        return {**kept, "auto_scaling": asg and asg.get("lifecycle_state")}

    def output(self, ctx: ActionContext, target: Resource | None) -> Mapping[str, Any]:
        state = self._last or {}
        return {
            "isolation_groups": {v: g["isolation"]["id"] for v, g in state.get("groups", {}).items() if g["isolation"]},
            "network_interfaces": [e["id"] for e in state.get("network_interfaces", [])],
        }

    # -- containment ---------------------------------------------------------------------
    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        iid = instance_id(target)
        if before is None:
            yield from self._contain_offline(target, iid)
            return
        yield from self._protect(iid, before)
        asg = before.get("auto_scaling")
        if asg and asg["lifecycle_state"] == "InService":
            yield self._leave_asg(iid, asg)
        for arn, specs in _by_group(before.get("targets", [])).items():
            yield ApiCall(
                "elbv2", "DeregisterTargets", {"TargetGroupArn": arn, "Targets": specs}, "stop load-balanced traffic"
            )
        group_ids = yield from self._ensure_groups(before)
        for eni in before["network_interfaces"]:
            yield from self._move(eni, *group_ids[eni["vpc_id"]])
        if asg and asg["lifecycle_state"] not in ("InService", *OUT_OF_SERVICE):
            raise ActionError(
                "IncorrectInstanceState",
                f"instance {iid} is {asg['lifecycle_state']} in Auto Scaling group {asg['name']}: it can be put in "
                "Standby or detached only when InService (the network is isolated; run the step again then)",
            )

    def _protect(self, iid: str, before: Mapping[str, Any]) -> CallPlan:
        if "termination_protection" not in before:
            return
        if not before["termination_protection"]:
            yield ApiCall(
                "ec2",
                "ModifyInstanceAttribute",
                {"InstanceId": iid, "DisableApiTermination": {"Value": True}},
                "termination protection: the evidence cannot be terminated by API",
            )
        if before.get("shutdown_behavior") == "terminate":
            yield ApiCall(
                "ec2",
                "ModifyInstanceAttribute",
                {"InstanceId": iid, "Attribute": "instanceInitiatedShutdownBehavior", "Value": "stop"},
                "a shutdown from inside the instance stops it instead of terminating it",
            )

    def _leave_asg(self, iid: str, asg: Mapping[str, Any]) -> ApiCall:
        decrement = _decrements(asg)
        effect = (
            "desired capacity lowered by one"
            if decrement
            else "the group is at its minimum, so it launches a replacement"
        )
        params = {
            "AutoScalingGroupName": asg["name"],
            "InstanceIds": [iid],
            "ShouldDecrementDesiredCapacity": decrement,
        }
        if self._mode == "detach":
            return ApiCall("autoscaling", "DetachInstances", params, f"the group can no longer terminate it ({effect})")
        return ApiCall(
            "autoscaling", "EnterStandby", params, f"the group can no longer terminate or replace it ({effect})"
        )

    def _ensure_groups(self, before: Mapping[str, Any]) -> Generator[ApiCall, Any, dict[str, tuple[str, str]]]:
        """Find or create the two groups of each VPC, fixing their rules; returns {vpc: (all-access, isolation)}."""
        out: dict[str, tuple[str, str]] = {}
        for vpc, groups in before["groups"].items():
            needs_transit = any(
                e["vpc_id"] == vpc
                and not (groups["isolation"] and e["groups"] == [groups["isolation"]["id"]])
                and not (groups["all_access"] and e["groups"] == [groups["all_access"]["id"]])
                for e in before["network_interfaces"]
            )
            isolation = yield from self._isolation_group(vpc, groups["isolation"])
            transit = (yield from self._transit_group(vpc, groups["all_access"])) if needs_transit else ""
            if not transit and groups["all_access"]:
                transit = groups["all_access"]["id"]
            out[vpc] = (transit, isolation)
        return out

    def _create(self, vpc: str, kind: str, description: str) -> GroupPlan:
        name = self.group_name(vpc, kind)
        tags = [{"Key": "Name", "Value": name}, {"Key": MANAGED_TAG, "Value": kind.replace("_", "-")}]
        params = {
            "GroupName": name,
            "Description": description,
            "VpcId": vpc,
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": tags}],
        }
        response = yield ApiCall(
            "ec2", "CreateSecurityGroup", params, f"create the {kind.replace('_', '-')} group of {vpc}"
        )
        return response_value(response, "GroupId", f"<{kind.replace('_', '-')} group of {vpc}>")

    def _isolation_group(self, vpc: str, group: Mapping[str, Any] | None) -> GroupPlan:
        if group is None:
            group_id = yield from self._create(
                vpc, "isolation", "Clampdown isolation: no inbound or outbound rules (incident response)"
            )
            egress = [_all_traffic([ANY_V4])]  # the rule every new group starts with
            ingress: list[dict[str, Any]] = []
        else:
            group_id, ingress, egress = group["id"], group["ingress"], group["egress"]
        if ingress:
            yield ApiCall(
                "ec2", "RevokeSecurityGroupIngress", {"GroupId": group_id, "IpPermissions": ingress}, "no inbound rules"
            )
        if egress:
            yield ApiCall(
                "ec2", "RevokeSecurityGroupEgress", {"GroupId": group_id, "IpPermissions": egress}, "no outbound rules"
            )
        return group_id

    def _transit_group(self, vpc: str, group: Mapping[str, Any] | None) -> GroupPlan:
        if group is None:
            group_id = yield from self._create(
                vpc,
                "all_access",
                "Clampdown isolation transit: all traffic, so existing flows become untracked (held for one call)",
            )
            ingress_open, egress_open = set[str](), {ANY_V4}
        else:
            group_id, ingress_open, egress_open = group["id"], _open_to(group["ingress"]), _open_to(group["egress"])
        wanted = {ANY_V4, ANY_V6}
        if wanted - ingress_open:
            rule = _all_traffic(wanted - ingress_open)
            yield ApiCall(
                "ec2", "AuthorizeSecurityGroupIngress", {"GroupId": group_id, "IpPermissions": [rule]}, "all inbound"
            )
        if wanted - egress_open:
            rule = _all_traffic(wanted - egress_open)
            yield ApiCall(
                "ec2", "AuthorizeSecurityGroupEgress", {"GroupId": group_id, "IpPermissions": [rule]}, "all outbound"
            )
        return group_id

    def _move(self, eni: Mapping[str, Any], transit: str, isolation: str) -> CallPlan:
        if eni["groups"] == [isolation]:
            return
        if eni["groups"] != [transit]:
            yield ApiCall(
                "ec2",
                "ModifyNetworkInterfaceAttribute",
                {"NetworkInterfaceId": eni["id"], "Groups": [transit]},
                "step 1/2: allow all traffic, so the interface's existing connections become untracked",
            )
        yield ApiCall(
            "ec2",
            "ModifyNetworkInterfaceAttribute",
            {"NetworkInterfaceId": eni["id"], "Groups": [isolation]},
            "step 2/2: no rules: untracked connections are dropped, nothing new gets in or out",
        )

    def _contain_offline(self, target: Resource | None, iid: str) -> CallPlan:
        """What a plan without AWS access can say: the calls, with placeholders for what is looked up."""
        details = target.details if target else {}
        vpc = known_id(details.get("vpc_id")) or f"<VPC of {iid}>"
        enis = [e for e in (known_id(x) for x in details.get("network_interface_ids") or []) if e]
        if self._protect_flag:
            for call in self._protect(iid, {"termination_protection": False, "shutdown_behavior": "terminate"}):
                yield ApiCall(call.service, call.operation, call.params, f"unless already so; {call.purpose}")
        if self._mode != "leave":
            name = asg_name_from_tags(target.tags if target else {}) or f"<Auto Scaling group of {iid}>"
            asg = {"name": name, "min_size": 0, "desired_capacity": 1}
            call = self._leave_asg(iid, asg)
            yield ApiCall(call.service, call.operation, call.params, f"only if in service in a group; {call.purpose}")
        if self.params.get("deregister_targets", True):
            yield ApiCall(
                "elbv2",
                "DeregisterTargets",
                {"TargetGroupArn": f"<each target group holding {iid}>", "Targets": [{"Id": iid}]},
                "only for target groups it is registered in",
            )
        before: dict[str, Any] = {
            "groups": {vpc: {"isolation": None, "all_access": None}},
            "network_interfaces": [
                {"id": e, "vpc_id": vpc, "groups": []} for e in (enis or [f"<each network interface of {iid}>"])
            ],
        }
        group_ids = yield from self._ensure_groups(before)
        for eni in before["network_interfaces"]:
            yield from self._move(eni, *group_ids[vpc])

    # -- rollback ------------------------------------------------------------------------
    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        iid = instance_id(target)
        now = current or {}
        transit = {g["all_access"]["id"] for g in before.get("groups", {}).values() if g.get("all_access")}
        current_groups = {e["id"]: e["groups"] for e in now.get("network_interfaces", [])}
        unknown = []
        for eni in before.get("network_interfaces", []):
            if len(eni["groups"]) == 1 and eni["groups"][0] in transit:
                unknown.append(eni["id"])  # never put an interface back into the all-access group
            elif current is None or current_groups.get(eni["id"]) != eni["groups"]:
                yield ApiCall(
                    "ec2",
                    "ModifyNetworkInterfaceAttribute",
                    {"NetworkInterfaceId": eni["id"], "Groups": list(eni["groups"])},
                    "put back its own security groups",
                )
        yield from self._restore_asg(iid, before.get("auto_scaling"), now.get("auto_scaling"), current is None)
        present = {_target_key(t) for t in now.get("targets", [])}
        missing = [t for t in before.get("targets", []) if _target_key(t) not in present]
        for arn, specs in _by_group(missing).items():
            yield ApiCall(
                "elbv2", "RegisterTargets", {"TargetGroupArn": arn, "Targets": specs}, "back in its target group"
            )
        if "termination_protection" in before:
            if not before["termination_protection"] and (current is None or now.get("termination_protection")):
                yield ApiCall(
                    "ec2",
                    "ModifyInstanceAttribute",
                    {"InstanceId": iid, "DisableApiTermination": {"Value": False}},
                    "termination protection off, as it was",
                )
            behavior = before.get("shutdown_behavior")
            if behavior == "terminate" and now.get("shutdown_behavior") != behavior:
                yield ApiCall(
                    "ec2",
                    "ModifyInstanceAttribute",
                    {"InstanceId": iid, "Attribute": "instanceInitiatedShutdownBehavior", "Value": behavior},
                    "an OS shutdown terminates the instance again, as it did",
                )
        if unknown:
            raise ActionError(
                "OriginalGroupsUnknown",
                f"the before-state was read while {', '.join(unknown)} was between the two isolation steps, so its "
                "own security groups are not in it: restore them from the first attempt's before-state",
            )

    def _restore_asg(
        self, iid: str, before: Mapping[str, Any] | None, current: Mapping[str, Any] | None, unknown: bool
    ) -> CallPlan:
        if not before or before["lifecycle_state"] != "InService":
            return
        if unknown:  # advice after a failure: undo what this action would have done
            operation = "ExitStandby" if self._mode == "standby" else "AttachInstances"
        elif current is None:
            operation = "AttachInstances"
        elif current["lifecycle_state"] in ("EnteringStandby", "Standby"):
            operation = "ExitStandby"
        else:
            return
        note = (
            ""
            if _decrements(before)
            else "; a replacement was launched meanwhile, so the group now wants one more instance: lower its "
            "desired capacity when convenient"
        )
        params = {"AutoScalingGroupName": before["name"], "InstanceIds": [iid]}
        yield ApiCall("autoscaling", operation, params, "back in service in its Auto Scaling group" + note)


def _volumes(instance: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"volume_id": m["Ebs"]["VolumeId"], "device": m.get("DeviceName", "")}
        for m in instance.get("BlockDeviceMappings", [])
        if (m.get("Ebs") or {}).get("VolumeId")
    ]


@register
class SnapshotVolumes(InstanceAction):
    """A forensic copy of every EBS volume. Not reversible on purpose: a rollback must not delete evidence.

    With no snapshot yet, one ``CreateSnapshots`` call takes a crash-consistent set of all attached
    volumes (same point in time); volumes still missing after a partial run get a ``CreateSnapshot``
    each. Snapshots are found again by their tags (incident and instance), so a re-run does not copy twice.
    """

    name = "ec2.snapshot-volumes"
    summary = (
        "Snapshot every attached EBS volume (one crash-consistent set), tagged with the incident, finding and "
        "instance; never deleted by a rollback."
    )
    reversible = False
    permissions = (
        "ec2:DescribeInstances", "ec2:DescribeSnapshots", "ec2:CreateSnapshots", "ec2:CreateSnapshot", "ec2:CreateTags",
    )  # fmt: skip

    def skip_instance(self, ctx: ActionContext, target: Resource, instance: Mapping[str, Any]) -> str | None:
        return None if _volumes(instance) else f"instance {target.id} has no EBS volume to snapshot"

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        iid = instance_id(target)
        volumes = _volumes(self.instance(ctx, target))
        filters = [
            {"Name": f"tag:{INCIDENT_TAG}", "Values": [tag_value(ctx.incident_id)]},
            {"Name": f"tag:{INSTANCE_TAG}", "Values": [iid]},
        ]
        found: dict[str, str] = {}
        paginator = ctx.client("ec2", target).get_paginator("describe_snapshots")
        for page in paginator.paginate(OwnerIds=["self"], Filters=filters):
            for snapshot in page.get("Snapshots", []):
                if snapshot.get("State") != "error":
                    found.setdefault(snapshot["VolumeId"], snapshot["SnapshotId"])
        snapshots = {v["volume_id"]: found[v["volume_id"]] for v in volumes if v["volume_id"] in found}
        return self.remember({"instance_id": iid, "volumes": volumes, "snapshots": snapshots})

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return bool(state.get("volumes")) and all(v["volume_id"] in state["snapshots"] for v in state["volumes"])

    def _tags(self, ctx: ActionContext, iid: str) -> list[dict[str, Any]]:
        tags = {
            "Name": tag_value(f"clampdown {ctx.incident_id} {iid}"),
            INCIDENT_TAG: tag_value(ctx.incident_id),
            FINDING_TAG: tag_value(ctx.finding.id),
            INSTANCE_TAG: iid,
        }
        return [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        iid = instance_id(target)
        description = tag_value(f"Clampdown forensic copy of {iid}, incident {ctx.incident_id}", 255)
        if before is None or not before.get("snapshots"):
            yield ApiCall(
                "ec2",
                "CreateSnapshots",
                {
                    "InstanceSpecification": {"InstanceId": iid, "ExcludeBootVolume": False},
                    "Description": description,
                    "TagSpecifications": self._tags(ctx, iid),
                },
                "one crash-consistent snapshot of every attached EBS volume",
            )
            return
        for volume in before["volumes"]:
            if volume["volume_id"] not in before["snapshots"]:
                yield ApiCall(
                    "ec2",
                    "CreateSnapshot",
                    {
                        "VolumeId": volume["volume_id"],
                        "Description": description,
                        "TagSpecifications": self._tags(ctx, iid),
                    },
                    f"the volume at {volume['device']} (not copied yet)",
                )

    def output(self, ctx: ActionContext, target: Resource | None) -> Mapping[str, Any]:
        state = self._last or {}
        return {
            "snapshots": [
                {**v, "snapshot_id": state["snapshots"][v["volume_id"]]}
                for v in state.get("volumes", [])
                if v["volume_id"] in state.get("snapshots", {})
            ]
        }


@register
class CaptureForensics(InstanceAction):
    """Reads what an investigator needs before the instance changes further, into the evidence bucket.

    The instance's description, console output, user data (a usual place for persistence), network
    interfaces, security groups (with rules), volumes, instance profile and its roles' policies. One
    JSON object per incident and instance: a re-run finds it and captures nothing.
    """

    name = "ec2.capture-forensics"
    summary = (
        "Save the instance's description, console output, user data, interfaces, security groups, volumes and "
        "IAM role to the evidence bucket, once per incident."
    )
    changes_aws = False
    reversible = False
    permissions = (
        "ec2:DescribeInstances", "ec2:GetConsoleOutput", "ec2:DescribeInstanceAttribute",
        "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeVolumes",
        "iam:GetInstanceProfile", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies",
    )  # fmt: skip
    _stored: dict[str, Any] | None = None

    def key(self, ctx: ActionContext, iid: str) -> str:
        return evidence_key(ctx.incident_id, self.name, iid, "capture.json")

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        if ctx.evidence is None:
            raise ActionError(
                "EvidenceStoreMissing",
                f"{self.name} stores its capture in the evidence bucket, and no evidence store is configured",
            )
        iid = instance_id(target)
        key = self.key(ctx, iid)
        ref = ctx.evidence.find(key)
        state: dict[str, Any] = {"instance_id": iid, "evidence_key": key, "evidence_ref": ref}
        if ref is not None:
            self._described = None  # captured already: nothing more to read
            return self.remember(state)
        instance = self.instance(ctx, target)
        groups = [g["GroupId"] for e in instance.get("NetworkInterfaces", []) for g in e.get("Groups", [])]
        state["security_group_ids"] = sorted(set(groups))
        state["instance_profile_arn"] = (instance.get("IamInstanceProfile") or {}).get("Arn")
        return self.remember(state)

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("evidence_ref") is not None

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        iid = instance_id(target)
        details = target.details if target else {}
        if before is None:
            groups = sorted({g for g in (known_id(x) for x in details.get("security_groups") or []) if g})
            arn = details.get("iam_instance_profile_arn")
            profile_arn = arn if isinstance(arn, str) and _PROFILE_ARN.fullmatch(arn) else None
        else:
            groups, profile_arn = list(before.get("security_group_ids", [])), before.get("instance_profile_arn")
        attached = [{"Name": "attachment.instance-id", "Values": [iid]}]
        capture: dict[str, Any] = {}
        capture["instance"] = yield ApiCall("ec2", "DescribeInstances", {"InstanceIds": [iid]}, "full description")
        capture["console"] = yield ApiCall("ec2", "GetConsoleOutput", {"InstanceId": iid}, "serial console output")
        capture["user_data"] = yield ApiCall(
            "ec2", "DescribeInstanceAttribute", {"InstanceId": iid, "Attribute": "userData"}, "user data (persistence)"
        )
        capture["network_interfaces"] = yield ApiCall(
            "ec2", "DescribeNetworkInterfaces", {"Filters": attached}, "every attached interface (addresses, tags)"
        )
        if groups:
            capture["security_groups"] = yield ApiCall(
                "ec2", "DescribeSecurityGroups", {"GroupIds": groups}, "its security groups, with their rules"
            )
        capture["volumes"] = yield ApiCall("ec2", "DescribeVolumes", {"Filters": attached}, "attached volumes")
        roles: dict[str, Any] = {}
        if profile_arn:
            profile_name = str(profile_arn).rsplit("/", 1)[-1]
            profile = yield ApiCall("iam", "GetInstanceProfile", {"InstanceProfileName": profile_name}, "its roles")
            capture["instance_profile"] = profile
            names = (
                [f"<role of {profile_name}>"]
                if is_planned(profile)
                else [r["RoleName"] for r in profile.get("InstanceProfile", {}).get("Roles", [])]
            )
            for role in names:
                params = {"RoleName": role, "MaxItems": 1000}
                roles[role] = {
                    "attached": (
                        yield ApiCall("iam", "ListAttachedRolePolicies", params, "what its credentials allow")
                    ),
                    "inline": (yield ApiCall("iam", "ListRolePolicies", params, "its inline policies' names")),
                }
        if is_planned(capture["instance"]) or ctx.evidence is None:
            return  # planning: nothing was read, nothing is stored
        document = self._document(ctx, iid, capture, roles)
        body = json.dumps(document, default=str, sort_keys=True, indent=1).encode()
        ref = ctx.evidence.put(self.key(ctx, iid), body)
        self._stored = {"evidence": ref, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}

    def _document(
        self, ctx: ActionContext, iid: str, capture: Mapping[str, Any], roles: Mapping[str, Any]
    ) -> dict[str, Any]:
        def clean(response: Any) -> Any:
            return {k: v for k, v in response.items() if k != "ResponseMetadata"} if response else None

        instances = [i for r in capture["instance"].get("Reservations", []) for i in r.get("Instances", [])]
        console = capture["console"] or {}
        user_data = ((capture["user_data"] or {}).get("UserData") or {}).get("Value")
        return {
            "format": "clampdown/ec2-forensics/1",
            "captured_at": ctx.now.isoformat(),
            "incident": ctx.incident_id,
            "finding": {"id": ctx.finding.id, "type": ctx.finding.type, "source": ctx.finding.source},
            "instance_id": iid,
            "instance": instances[0] if instances else None,
            "console_output": {
                "timestamp": console.get("Timestamp"),
                "output": console.get("Output"),
                "text": _decoded(console.get("Output")),
            },
            "user_data": {"value": user_data, "text": _decoded(user_data)},
            "network_interfaces": (capture["network_interfaces"] or {}).get("NetworkInterfaces", []),
            "security_groups": (capture.get("security_groups") or {}).get("SecurityGroups", []),
            "volumes": (capture["volumes"] or {}).get("Volumes", []),
            "instance_profile": (clean(capture.get("instance_profile")) or {}).get("InstanceProfile"),
            "roles": {
                name: {
                    "attached_policies": r["attached"].get("AttachedPolicies", []),
                    "inline_policy_names": r["inline"].get("PolicyNames", []),
                    "truncated": bool(r["attached"].get("IsTruncated") or r["inline"].get("IsTruncated")),
                }
                for name, r in roles.items()
            },
        }

    def output(self, ctx: ActionContext, target: Resource | None) -> Mapping[str, Any]:
        return dict(self._stored or {})


def _decoded(data: Any) -> str | None:
    """The text of a base64 value (console output, user data), or None if it is not base64 (kept as is)."""
    if not isinstance(data, str) or not data:
        return None
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
    except ValueError:
        return None


@register
class StopInstance(InstanceAction):
    """Stops the instance. Its memory (processes, connections, keys held in RAM) is lost: capture it first."""

    name = "ec2.stop-instance"
    summary = (
        "Stop the instance (memory evidence - processes, connections, keys in RAM - is lost; capture it first); "
        "rollback starts it again if it was running."
    )
    permissions = (
        "ec2:DescribeInstances", "autoscaling:DescribeAutoScalingInstances", "ec2:StopInstances", "ec2:StartInstances",
    )  # fmt: skip

    def skip_instance(self, ctx: ActionContext, target: Resource, instance: Mapping[str, Any]) -> str | None:
        if instance.get("RootDeviceType") == "instance-store":
            return f"instance {target.id} is instance-store backed: it cannot be stopped, only terminated"
        if (instance.get("State") or {}).get("Name") in ("stopping", "stopped"):
            return None
        asg = asg_membership(ctx, target, str(target.id))
        if asg and asg["lifecycle_state"] == "InService":
            return (
                f"instance {target.id} is in service in Auto Scaling group {asg['name']}, which would terminate and "
                "replace it once stopped: isolate it first (ec2.isolate-instance puts it in Standby)"
            )
        return None

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        iid = instance_id(target)
        return {"instance_id": iid, "state": (self.instance(ctx, target).get("State") or {}).get("Name")}

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("state") in ("stopping", "stopped")

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any]:
        return {**(before or {}), "state": "stopped"}

    def written_part(self, state: Mapping[str, Any]) -> Any:
        return state.get("state") in ("stopping", "stopped")

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        yield ApiCall("ec2", "StopInstances", {"InstanceIds": [instance_id(target)]}, "stop (memory is lost)")

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        if before.get("state") in ("pending", "running") and (current or {}).get("state") not in ("pending", "running"):
            yield ApiCall(
                "ec2",
                "StartInstances",
                {"InstanceIds": [instance_id(target)]},
                "start it again (it must have finished stopping)",
            )


@register
class DetachInstanceProfile(InstanceAction):
    """Takes the IAM role away from the instance, or swaps it for a minimal one (``replace_with``).

    New credentials can no longer be fetched from the instance metadata service; credentials already
    taken stay valid until they expire, so pair this with ``iam.revoke-role-sessions`` on the role.
    """

    name = "ec2.detach-instance-profile"
    summary = (
        "Disassociate the instance profile (or replace it with a minimal one); credentials already taken stay "
        "valid until they expire: also revoke the role's sessions."
    )
    permissions = (
        "ec2:DescribeInstances", "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:DisassociateIamInstanceProfile", "ec2:AssociateIamInstanceProfile",
        "ec2:ReplaceIamInstanceProfileAssociation", "iam:PassRole", "iam:GetInstanceProfile",
    )  # fmt: skip
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "replace_with": {
                "type": "string",
                "pattern": _PROFILE,
                "description": "Name or ARN of an instance profile to put in place of the current one "
                "(e.g. one that only allows SSM, so responders can still reach the instance).",
            }
        },
    }

    _resolved: str | None = None

    def _replacement(self) -> dict[str, str] | None:
        value = self.params.get("replace_with")
        if not value:
            return None
        if not re.fullmatch(_PROFILE, str(value)):  # parameters may be rendered from a finding: check again
            raise ActionError("InvalidParameter", "replace_with must be an instance profile name or ARN")
        return {"Arn": str(value)} if str(value).startswith("arn:") else {"Name": str(value)}

    def read_state(self, ctx: ActionContext, target: Resource | None) -> dict[str, Any]:
        iid = instance_id(target)
        if not self.instance(ctx, target).get("IamInstanceProfile"):
            return {"instance_id": iid, "association_id": None, "profile_arn": None}
        response = ctx.client("ec2", target).describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [iid]}]
        )
        for item in response.get("IamInstanceProfileAssociations", []):
            if item.get("State") in ("associating", "associated"):
                return {
                    "instance_id": iid,
                    "association_id": item["AssociationId"],
                    "profile_arn": item["IamInstanceProfile"]["Arn"],
                }
        return {"instance_id": iid, "association_id": None, "profile_arn": None}

    def _is_replacement(self, arn: str | None) -> bool:
        wanted = self._replacement()
        if not wanted or not arn:
            return False
        return arn == wanted.get("Arn") or arn.rsplit("/", 1)[-1] == wanted.get("Name")

    def is_contained(self, state: Mapping[str, Any], ctx: ActionContext, target: Resource | None) -> bool:
        return state.get("association_id") is None or self._is_replacement(state.get("profile_arn"))

    def _replacement_arn(self, ctx: ActionContext, target: Resource | None) -> str:
        """The ARN of the ``replace_with`` profile (a name is looked up once: the plan shows the ARN)."""
        wanted = self._replacement() or {}
        if "Arn" in wanted:
            return wanted["Arn"]
        if self._resolved is None:
            profile = ctx.client("iam", target).get_instance_profile(InstanceProfileName=wanted["Name"])
            self._resolved = str(profile["InstanceProfile"]["Arn"])
        return self._resolved

    def expected_state(
        self, before: Mapping[str, Any] | None, ctx: ActionContext, target: Resource | None
    ) -> dict[str, Any] | None:
        if before is None:
            return None
        if self._replacement():
            arn = self._replacement_arn(ctx, target)
            return {**before, "association_id": "<the new association's id>", "profile_arn": arn}
        return {**before, "association_id": None, "profile_arn": None}

    def contain(self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any] | None) -> CallPlan:
        iid = instance_id(target)
        association = (before or {}).get("association_id") or f"<instance profile association of {iid}>"
        replacement = self._replacement()
        if replacement:
            yield ApiCall(
                "ec2",
                "ReplaceIamInstanceProfileAssociation",
                {"IamInstanceProfile": replacement, "AssociationId": association},
                "swap the role for the minimal one",
            )
        else:
            yield ApiCall(
                "ec2",
                "DisassociateIamInstanceProfile",
                {"AssociationId": association},
                "no role: the metadata service hands out no new credentials",
            )

    def restore(
        self, ctx: ActionContext, target: Resource | None, before: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> CallPlan:
        iid = instance_id(target)
        original = before.get("profile_arn")
        if not original or (current is not None and current.get("profile_arn") == original):
            return
        association = (current or {}).get("association_id")
        if current is None and self._replacement():
            association = f"<current instance profile association of {iid}>"
        if association:
            yield ApiCall(
                "ec2",
                "ReplaceIamInstanceProfileAssociation",
                {"IamInstanceProfile": {"Arn": original}, "AssociationId": association},
                "the original role again",
            )
        else:
            yield ApiCall(
                "ec2",
                "AssociateIamInstanceProfile",
                {"IamInstanceProfile": {"Arn": original}, "InstanceId": iid},
                "the original role again",
            )
