"""Account B: the image the app will run exists, and which instance, repository and digest it is.

Read-only: nothing here writes. The instance id is what SAE needs as `AcrInstanceId`; when the spec
omits it, it is found by the instance name in the image's domain. Personal Edition repositories
are invisible to the Enterprise API, so they are not checked (a missing tag shows when SAE pulls).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from alibabacloud_cr20181201 import models as cr_models

from crossdeploy.cloud import CloudError, call
from crossdeploy.image_ref import ImageRef, parse_image
from crossdeploy.permissions import ALL, Arns, Needs, grant
from crossdeploy.plan import BLOCKED, OK, PlanRow
from crossdeploy.spec import DeploySpec
from tasks.step import Accounts, Applied, Inspection, Step

NAME = "image"
NEWEST_SHOWN = 5
_MAX_PAGES = 10


@dataclass(frozen=True)
class ImageState:
    edition: Literal["enterprise", "personal"]
    instance_id: str | None
    """The Enterprise instance (`AcrInstanceId`); None for Personal Edition or when not found."""
    repo_id: str | None
    digest: str | None
    """The tag's manifest digest; None when not checked or missing."""
    rows: tuple[PlanRow, ...]
    pushed_ms: int | None = None
    """When the tag was last pushed (ACR's ImageUpdate, ms); None when not checked or missing."""


class _BlockedError(Exception):
    """A precondition the run cannot fix: what is there now, and the cause and fix."""

    def __init__(self, now: str, reason: str) -> None:
        super().__init__(reason)
        self.now = now
        self.reason = reason


def inspect_image(creds_b: Any, spec: DeploySpec, known: ImageState | None = None) -> ImageState:
    """Resolve the image in account B: instance, repository, tag digest. Reads only.

    `known`, a state this run found before (the failure diagnosis re-checks): the instance and
    repository it resolved keep their ids, so only the tag (which a push or a delete changes) is
    read again."""
    ref = spec.image.ref
    extra = _region_rows(ref, spec.app.region)
    if ref.edition == "personal":
        row = PlanRow(
            NAME, "B", f"{ref.repository}:{ref.tag}", "not checked (Personal Edition)", "exists",
            OK, "The ACR API cannot see Personal Edition repositories; SAE reports a missing tag "
            "when it pulls.",
        )  # fmt: skip
        return ImageState("personal", None, None, None, (row, *extra))
    cr = creds_b.get_client("cr")
    instance_id: str | None = None
    repo_id: str | None = None
    try:
        if known is not None and known.instance_id and known.repo_id:
            instance_id, repo_id, note = known.instance_id, known.repo_id, known.rows[0].reason
        else:
            instance_id, note = _instance_id(cr, ref, spec.image.instance_id)
            repo_id = _repo_id(cr, instance_id, ref)
        digest, pushed_ms = _digest(cr, instance_id, repo_id, ref)
    except _BlockedError as stop:
        where = instance_id or spec.image.instance_id or ref.instance_name
        row = PlanRow(
            NAME, "B", f"{ref.repository}:{ref.tag} on {where}", stop.now, "exists", BLOCKED,
            stop.reason,
        )  # fmt: skip
        return ImageState("enterprise", instance_id, repo_id, None, (row, *extra))
    row = PlanRow(
        NAME, "B", f"{ref.repository}:{ref.tag} on {instance_id}", f"exists ({_short(digest)})",
        "exists", OK, note,
    )  # fmt: skip
    return ImageState("enterprise", instance_id, repo_id, digest, (row, *extra), pushed_ms)


def pushed_later(creds_b: Any, spec: DeploySpec, image: ImageState, running: str | None) -> str:
    """Why the image `running` (the app's ImageUrl now) supersedes the spec's tag, or ''.

    It does when both are tags of the same repository and ACR says the running one was pushed
    after the spec's (ImageUpdate: the time a tag last received a push). Two image pushes close
    together start two runs in either order; the later one must not be undone by the earlier.
    Anything not comparable (another repository, a tag ACR no longer has, Personal Edition)
    supersedes nothing.
    """
    ref = spec.image.ref
    try:
        now = parse_image(running) if running else None
    except ValueError:
        return ""
    if now is None or (now.host, now.repository) != (ref.host, ref.repository):
        return ""
    if now.tag == ref.tag or image.pushed_ms is None or not image.instance_id or not image.repo_id:
        return ""
    request = cr_models.GetRepoTagRequest(
        instance_id=image.instance_id, repo_id=image.repo_id, tag=now.tag
    )
    try:
        body = call("cr:GetRepoTag", creds_b.get_client("cr").get_repo_tag, request).body
    except CloudError:
        return ""
    running_ms = _millis(body.image_update)
    if not body.digest or running_ms <= image.pushed_ms:
        return ""
    return (
        f"Skipped {ref.tag}: {spec.app.name} already runs {now.tag}, pushed "
        f"{_when(running_ms)}, after {ref.tag} ({_when(image.pushed_ms)}); an older push never "
        "replaces a newer one."
    )


def _when(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- lookups -------------------------------------------------------------------------------------


def _instance_id(cr: Any, ref: ImageRef, given: str | None) -> tuple[str, str]:
    """(instance id, note for the plan). The instance must be the one the domain names."""
    if not given:
        found = _by_name(cr, ref)
        if found is None:
            raise _BlockedError(
                f"no instance named {ref.instance_name}",
                f"Account B has no ACR Enterprise instance named {ref.instance_name!r} in "
                f"{ref.region} (the name in {ref.host}). Check image.url, and that "
                "accounts.registry is the account that owns the image.",
            )
        return found, f"image.instance_id is omitted; {ref.host} is instance {found}."
    try:
        body = call(
            "cr:GetInstance", cr.get_instance, cr_models.GetInstanceRequest(instance_id=given)
        ).body
    except CloudError:
        if given in _instance_ids(cr):
            raise  # it exists: the call was refused for another reason
        found = _by_name(cr, ref)
        fix = f"set image.instance_id: {found}" if found else "check image.instance_id"
        raise _BlockedError(
            f"no instance {given}",
            f"Account B has no ACR Enterprise instance {given}; {fix} (the instance of "
            f"{ref.host}).",
        ) from None
    if body.instance_name != ref.instance_name:
        found = _by_name(cr, ref)
        fix = (
            f"set image.instance_id: {found}"
            if found
            else f"account B has no instance named {ref.instance_name!r}: check image.url and "
            "image.instance_id"
        )
        raise _BlockedError(
            f"{given} is {body.instance_name!r}",
            f"AcrInstanceId is not the image's instance: {given} is named "
            f"{body.instance_name!r}, but {ref.host} belongs to an instance named "
            f"{ref.instance_name!r}; {fix}. With the wrong instance SAE gets a token for the "
            "wrong registry and the pull is refused.",
        )
    return given, ""


def _by_name(cr: Any, ref: ImageRef) -> str | None:
    """The id of account B's Enterprise instance with the domain's instance name, if any."""
    request = cr_models.ListInstanceRequest(instance_name=ref.instance_name, page_size=100)
    instances = call("cr:ListInstance", cr.list_instance, request).body.instances or []
    for instance in instances:
        if instance.instance_name == ref.instance_name and instance.region_id in (None, ref.region):
            return str(instance.instance_id)
    return None


def _instance_ids(cr: Any) -> set[str]:
    """Every Enterprise instance account B has (where GetInstance's not-found code is not
    documented, the listing says whether an instance exists)."""
    ids: set[str] = set()
    for page in range(1, _MAX_PAGES + 1):
        request = cr_models.ListInstanceRequest(page_no=page, page_size=100)
        body = call("cr:ListInstance", cr.list_instance, request).body
        ids |= {str(i.instance_id) for i in body.instances or []}
        if len(ids) >= int(body.total_count or 0) or not body.instances:
            break
    return ids


def _repo_id(cr: Any, instance_id: str, ref: ImageRef) -> str:
    """The repository's id; whether it is missing is read from the namespace's repositories."""
    request = cr_models.GetRepositoryRequest(
        instance_id=instance_id, repo_namespace_name=ref.namespace, repo_name=ref.repo
    )
    try:
        repo_id = call("cr:GetRepository", cr.get_repository, request).body.repo_id
    except CloudError:
        repo_id = None
    if repo_id:
        return str(repo_id)
    named = cr_models.ListRepositoryRequest(
        instance_id=instance_id, repo_namespace_name=ref.namespace, repo_name=ref.repo
    )
    for repo in call("cr:ListRepository", cr.list_repository, named).body.repositories or []:
        if (repo.repo_namespace_name, repo.repo_name) == (ref.namespace, ref.repo) and repo.repo_id:
            return str(repo.repo_id)
    listing = cr_models.ListRepositoryRequest(
        instance_id=instance_id, repo_namespace_name=ref.namespace, page_size=100
    )
    repos = call("cr:ListRepository", cr.list_repository, listing).body.repositories or []
    names = sorted(f"{r.repo_namespace_name}/{r.repo_name}" for r in repos)
    there = (
        f"repositories in {ref.namespace}: {', '.join(names)}"
        if names
        else (f"namespace {ref.namespace} has no repositories")
    )
    raise _BlockedError(
        "repository missing",
        f"{ref.repository} does not exist on {instance_id} ({there}). Push the image, or fix "
        "image.url.",
    )


def _digest(cr: Any, instance_id: str, repo_id: str, ref: ImageRef) -> tuple[str, int | None]:
    """The tag's digest and when it was last pushed. Whether the tag is missing is read from the
    repository's tag list: the code GetRepoTag answers for a missing tag is not documented, and
    a reply without a digest tells nothing."""
    request = cr_models.GetRepoTagRequest(instance_id=instance_id, repo_id=repo_id, tag=ref.tag)
    try:
        body = call("cr:GetRepoTag", cr.get_repo_tag, request).body
    except CloudError:
        body = None
    if body is not None and body.digest:
        return str(body.digest), _millis(body.image_update) or None
    images = _tags(cr, instance_id, repo_id)
    listed = next((image for image in images if image.tag == ref.tag and image.digest), None)
    if listed is not None:
        return str(listed.digest), _millis(listed.image_update) or None
    newest = _newest_tags(images)
    there = f"newest tags: {', '.join(newest)}" if newest else "the repository has no tags"
    raise _BlockedError(
        "tag missing",
        f"Tag {ref.tag} does not exist in {ref.repository} ({there}). Push {ref.tag}, or set "
        "image.url to an existing tag.",
    )


def _tags(cr: Any, instance_id: str, repo_id: str) -> list[Any]:
    """Every image of the repository (up to `_MAX_PAGES` pages)."""
    images: list[Any] = []
    for page in range(1, _MAX_PAGES + 1):
        request = cr_models.ListRepoTagRequest(
            instance_id=instance_id, repo_id=repo_id, page_no=page, page_size=100
        )
        body = call("cr:ListRepoTag", cr.list_repo_tag, request).body
        images += body.images or []
        if len(images) >= int(body.total_count or 0) or not body.images:
            break
    return images


def _newest_tags(images: list[Any]) -> list[str]:
    """The most recently created tags, newest first."""
    ordered = sorted(images, key=lambda image: _millis(image.image_create), reverse=True)
    return [str(image.tag) for image in ordered[:NEWEST_SHOWN]]


def _millis(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _short(digest: str) -> str:
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:12]}…" if len(hexdigits) > 12 else digest


def _region_rows(ref: ImageRef, app_region: str) -> tuple[PlanRow, ...]:
    if ref.region == app_region:
        return ()
    return (
        PlanRow(
            NAME, "B", ref.host, f"image in {ref.region}", f"app in {app_region}", OK,
            f"The image is in {ref.region} and the app in {app_region}: this works over the "
            f"public domain only ({ref.domains()[0]}), through the app's NAT gateway and the "
            "internet whitelist; a -vpc domain is reachable only within its own region.",
        ),
    )  # fmt: skip


# -- the step ------------------------------------------------------------------------------------


class ImageStep(Step[ImageState, Applied]):
    """Reads only: the image is account B's to push."""

    name = task_name = NAME
    account = "B"
    writes = False
    fleet_wide = True

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        """Personal Edition is not read (the API cannot see it). Without image.instance_id the
        instance is found by name, so its ARNs cover every instance."""
        ref, instance_id = spec.image.ref, spec.image.instance_id
        if ref.edition == "personal":
            return Needs()
        finding = grant(ALL, "cr:ListInstance") if instance_id is None else ()
        repository = arns.cr_repository(instance_id, ref.namespace, ref.repo)
        return Needs(
            reads=finding
            + grant(arns.cr_instance(instance_id), "cr:GetInstance", "cr:ListRepository")
            + grant(repository, "cr:GetRepository", "cr:ListRepositoryTag")
        )

    def inspect(self, accounts: Accounts, spec: DeploySpec, found: Inspection) -> ImageState:
        return inspect_image(accounts.registry, spec, found.before(self))


STEP = ImageStep()
