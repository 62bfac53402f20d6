"""The SAE documents as the sandbox stores them, typed so mypy checks their keys.

Every document is a JSON object in the store (sandbox/store.py), dumped as is by
`/_sandbox/state` and kept across restarts, so these are TypedDicts over plain JSON values: what
the store hands back is the same dict, only typed (`as_app`, `as_change_order`, ...). Capitalized
keys are the wire names the API answers with; lower-case keys are the sandbox's own bookkeeping.

Bottom of the SAE package: it imports nothing of it (documents <- rules <- lifecycle <- handlers).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast

from sandbox.store import Doc

APP = "sae_app"
CHANGE_ORDER = "sae_change_order"
ACTIVE_INDEX = "sae_active_change_order"
"""Global index of change orders the engine still has to move (id -> account, region)."""
NAMESPACE = "sae_namespace"
SECRET = "sae_secret"  # noqa: S105 - a store kind, not a credential

# Change order status codes (reference 2.5).
PREPARING, RUNNING, SUCCESS, FAILED, ABORTED = 0, 1, 2, 3, 6
WAIT_CONFIRM, AUTO_WAIT, SYSTEM_FAIL = 8, 9, 10
ACTIVE = frozenset({PREPARING, RUNNING, WAIT_CONFIRM, AUTO_WAIT})
NORMAL, ABNORMAL = 0, 1
"""DescribeChangeOrder's SubStatus. "1: Abnormal. For example, if a batch release fails, you must
manually perform a rollback, leaving the release order in the In Progress state" (SDK model
DescribeChangeOrderResponseBodyData.sub_status; API reference
https://www.alibabacloud.com/help/en/sae/api-sae-2019-05-06-describechangeorder). The docs give
a failed batch release as the example without saying which batch: the sandbox makes a failure in
any batch after the first abnormal (a batch is already released, so the app runs two versions
until someone rolls back), and a failure in the first batch a plain failure (Status 3)."""

STATUS_NAMES = {
    PREPARING: "READY",
    RUNNING: "RUNNING",
    SUCCESS: "SUCCESS",
    FAILED: "FAIL",
    ABORTED: "ABORT",
    WAIT_CONFIRM: "WAIT_BATCH_CONFIRM",
    AUTO_WAIT: "AUTO_BATCH_WAIT",
    SYSTEM_FAIL: "SYSTEM_FAIL",
}

CO_TYPES = {
    "CoCreateApp": "Create application",
    "CoDeploy": "Deploy application",
    "CoRollback": "Roll back application",
    "CoStopApplication": "Stop application",
    "CoStartApplication": "Start application",
    "CoDeleteApp": "Delete application",
}

Config = dict[str, str]
"""An application's configuration as sent on the wire: parameter name -> value as text."""


class Instance(TypedDict):
    InstanceId: str
    ImageUrl: str
    status: str
    """Running or ErrImagePull (shown as ImagePullBackOff after a while)."""
    since: float
    InstanceContainerIp: str
    VSwitchId: str
    PackageVersion: str
    order: NotRequired[str]
    """The change order that started it (instances of a running order replace the old ones)."""


class Version(TypedDict):
    """A release recorded by a create or deploy: what RollbackApplication returns to."""

    Id: str
    CreateTime: str
    config: Config


class App(TypedDict):
    """Kind `sae_app`, scope = account and region, id = AppId."""

    AppId: str
    AppName: str
    NamespaceId: str
    RegionId: str
    CreateTime: int
    config: Config
    instances: list[Instance]
    versions: list[Version]
    stopped: bool
    deleting: bool
    last_change_order_id: str
    instance_seq: NotRequired[int]
    version_seq: NotRequired[int]
    running_version: NotRequired[str]
    """The version the app last ran (what an abort with rollback returns to)."""


class Task(TypedDict):
    TaskId: str
    TaskName: str
    kind: str
    """What the engine does when the task completes: noop, pull, start, stop or delete."""
    Status: int
    Message: str
    ErrorCode: str
    ErrorMessage: str
    seconds: float
    started_at: float | None


class Stage(TypedDict):
    StageId: str
    StageName: str
    Status: int
    ExecutorType: int
    tasks: list[Task]


class Pipeline(TypedDict):
    """One batch of a change order."""

    PipelineId: str
    PipelineName: str
    Status: int
    StartTime: int
    UpdateTime: int
    BatchType: int
    ParallelCount: int
    instances: int
    stages: list[Stage]


class PullRecord(TypedDict):
    ok: bool
    reason: str


class ChangeOrder(TypedDict):
    """Kind `sae_change_order`, scope = the app's, id = ChangeOrderId."""

    ChangeOrderId: str
    AppId: str
    AppName: str
    CoTypeCode: str
    CoType: str
    Description: str
    CreateTime: str
    created_at: float
    cursor: float
    """Where the order's own clock stands: task times chain from it, whatever the ticks."""
    FinishTime: str
    Status: int
    SubStatus: int
    ErrorMessage: str
    BatchType: str
    BatchWaitTime: float
    current: int
    """Index of the batch (pipeline) running or waiting."""
    wait_until: float | None
    pipelines: list[Pipeline]
    target: Config
    kind: str
    pull: PullRecord | None
    version: str | None
    """The version this order releases (create, deploy) or returns to (rollback)."""


class ActiveRef(TypedDict):
    """Kind `sae_active_change_order` (global scope): where an active change order lives."""

    id: str
    account: str
    region: str


class Namespace(TypedDict):
    """Kind `sae_namespace`, scope = account and region, id = NamespaceId."""

    NamespaceId: str
    NamespaceName: str
    NameSpaceShortId: str
    RegionId: str
    VpcId: str
    VSwitchId: str
    SecurityGroupId: str
    NamespaceDescription: str


class Secret(TypedDict):
    """Kind `sae_secret`, scope = account and the namespace's region, id = str(SecretId)."""

    SecretId: int
    SecretName: str
    SecretType: str
    NamespaceId: str
    SecretData: dict[str, str]
    """The decoded key -> value map (masked in `/_sandbox/state`)."""
    CreateTime: int
    UpdateTime: int


def as_app(doc: Doc) -> App:
    return cast(App, doc)


def as_change_order(doc: Doc) -> ChangeOrder:
    return cast(ChangeOrder, doc)


def as_active_ref(doc: Doc) -> ActiveRef:
    return cast(ActiveRef, doc)


def as_namespace(doc: Doc) -> Namespace:
    return cast(Namespace, doc)


def as_secret(doc: Doc) -> Secret:
    return cast(Secret, doc)


def ms(epoch: float) -> int:
    """Epoch seconds as the epoch milliseconds the documents and answers carry."""
    return int(epoch * 1000)
