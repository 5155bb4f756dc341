"""``tag`` on moto: every supported kind, through one table of tag APIs."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.actions import REGISTRY, ActionContext, Status
from chalicelib.findings import Resource, normalize
from tests.conftest import ACCOUNT, REGION, corpus_event
from tests.functional.actions.lifecycle import assert_lifecycle

TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})
Made = tuple[Resource, Callable[[], dict[str, str]]]


@pytest.fixture
def finding() -> Any:
    return normalize(corpus_event("guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"))[0]


def context(finding: Any, aws_clients: Any) -> ActionContext:
    return ActionContext(finding=finding, playbook="contain-tor", incident_id="inc-42", aws=aws_clients)


def as_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags}


def ec2_instance(session: Any, tags: dict[str, str]) -> Made:
    ec2 = session.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.create_tags(Resources=[instance], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    read = lambda: as_dict(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance]}])["Tags"])  # noqa: E731
    return Resource("ec2-instance", id=instance, account=ACCOUNT, region=REGION), read


def security_group(session: Any, tags: dict[str, str]) -> Made:
    ec2 = session.client("ec2")
    group = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    ec2.create_tags(Resources=[group], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    read = lambda: as_dict(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [group]}])["Tags"])  # noqa: E731
    return Resource("security-group", id=group, account=ACCOUNT, region=REGION), read


def s3_bucket(session: Any, tags: dict[str, str]) -> Made:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="tagged-bucket")
    s3.put_bucket_tagging(Bucket="tagged-bucket", Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})

    def read() -> dict[str, str]:
        try:
            return as_dict(s3.get_bucket_tagging(Bucket="tagged-bucket")["TagSet"])
        except s3.exceptions.ClientError:
            return {}

    return Resource("s3-bucket", name="tagged-bucket", account=ACCOUNT, region=REGION), read


def lambda_function(session: Any, tags: dict[str, str]) -> Made:
    role = session.client("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(e, c):\n    return e\n")
    lam = session.client("lambda")
    arn = lam.create_function(
        FunctionName="fn", Runtime="python3.11", Role=role, Handler="index.handler", Code={"ZipFile": buffer.getvalue()}
    )["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags=tags)
    # Named without an ARN: the action builds it from account and region.
    return Resource("lambda-function", name="fn", account=ACCOUNT, region=REGION), lambda: lam.list_tags(Resource=arn)[
        "Tags"
    ]


def iam_role(session: Any, tags: dict[str, str]) -> Made:
    iam = session.client("iam")
    iam.create_role(
        RoleName="app", AssumeRolePolicyDocument=TRUST, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    return Resource("iam-role", name="app", account=ACCOUNT), lambda: as_dict(
        iam.list_role_tags(RoleName="app")["Tags"]
    )


def iam_user(session: Any, tags: dict[str, str]) -> Made:
    iam = session.client("iam")
    iam.create_user(UserName="bob", Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return Resource("iam-user", name="bob", account=ACCOUNT), lambda: as_dict(
        iam.list_user_tags(UserName="bob")["Tags"]
    )


MAKERS = {
    "ec2-instance": ec2_instance,
    "security-group": security_group,
    "s3-bucket": s3_bucket,
    "lambda-function": lambda_function,
    "iam-role": iam_role,
    "iam-user": iam_user,
}


def test_every_kind_the_action_declares_is_tested() -> None:
    assert set(REGISTRY["tag"].resource_kinds) == set(MAKERS)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_tag_lifecycle(kind: str, boto_session: Any, aws_clients: Any, recorder: Any, finding: Any) -> None:
    """Default tags; an earlier value of one key is remembered and put back, the other key removed."""
    existing = {"team": "payments", "clampdown:incident": "inc-1"}
    target, read = MAKERS[kind](boto_session, existing)
    action = REGISTRY["tag"]({})
    result = assert_lifecycle(action, context(finding, aws_clients), target, read, recorder)
    assert (result.before or {})["tags"] == {"clampdown:incident": "inc-1", "clampdown:playbook": None}
    assert read() == existing

    action.apply(context(finding, aws_clients), target)
    assert read() == {"team": "payments", "clampdown:incident": "inc-42", "clampdown:playbook": "contain-tor"}


def test_tag_values_from_the_finding_are_made_safe(boto_session: Any, aws_clients: Any, finding: Any) -> None:
    target, read = iam_role(boto_session, {})
    hostile = "<script>alert(1)</script>\n\x00" + "x" * 400
    result = REGISTRY["tag"]({"tags": {"clampdown:note": hostile}}).apply(context(finding, aws_clients), target)
    assert result.status == Status.CONTAINED, result.to_dict()
    value = read()["clampdown:note"]
    assert len(value) == 256 and value.startswith("_script_alert_1__/script___")


def test_s3_rewrites_the_whole_set_without_aws_system_tags(finding: Any) -> None:
    """The planned PutBucketTagging keeps other tags and leaves out aws: keys AWS would refuse."""
    action = REGISTRY["tag"]({"tags": {"owner": "ir"}})
    target = Resource("s3-bucket", name="stack-bucket")
    before = {"tags": {"owner": None}, "all": {"aws:cloudformation:stack-name": "s", "team": "a"}}
    (call,) = list(action.contain(ActionContext(finding=finding), target, before))
    assert call.params["Tagging"] == {"TagSet": [{"Key": "team", "Value": "a"}, {"Key": "owner", "Value": "ir"}]}


def test_missing_resource_fails_with_the_aws_error(aws_clients: Any, finding: Any) -> None:
    result = REGISTRY["tag"]({}).apply(context(finding, aws_clients), Resource("iam-role", name="gone"))
    assert result.status == Status.FAILED and result.error_code == "NoSuchEntity"


def test_access_denied_part_way_lists_undo_steps(boto_session: Any, aws_clients: Any, finding: Any) -> None:
    from botocore.exceptions import ClientError

    target, read = lambda_function(boto_session, {"clampdown:incident": "old"})

    def deny(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, model.name)

    boto_session.events.register("before-call.lambda.TagResource", deny)
    result = REGISTRY["tag"]({}).apply(context(finding, aws_clients), target)
    assert result.status == Status.FAILED and result.error_code == "AccessDeniedException"
    assert result.calls_made == [] and result.undo == [] and read() == {"clampdown:incident": "old"}


def test_offline_plan(finding: Any) -> None:
    offline = ActionContext(finding=finding, playbook="pb", incident_id="inc-1")
    plan = REGISTRY["tag"]({}).plan(offline, Resource("security-group", id="sg-0123456789abcdef0"))
    assert [(c.permission, dict(c.params)) for c in plan.calls] == [
        (
            "ec2:CreateTags",
            {
                "Resources": ["sg-0123456789abcdef0"],
                "Tags": [{"Key": "clampdown:incident", "Value": "inc-1"}, {"Key": "clampdown:playbook", "Value": "pb"}],
            },
        )
    ]
