"""Parse an image address into the parts a cross-account deploy needs.

Domain forms (reference 6.5): Enterprise `<instance>-registry[-vpc].<region>.cr.aliyuncs.com`,
Personal `registry[-vpc].<region>.aliyuncs.com`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_ENTERPRISE = re.compile(
    r"^(?P<instance>[a-z0-9][a-z0-9-]*?)-registry(?P<vpc>-vpc)?\.(?P<region>[a-z]{2}-[a-z0-9-]+)"
    r"\.cr\.aliyuncs\.com$"
)
_PERSONAL = re.compile(r"^registry(?P<vpc>-vpc)?\.(?P<region>[a-z]{2}-[a-z0-9-]+)\.aliyuncs\.com$")
_REPO = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*/[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ImageRef:
    host: str
    edition: Literal["enterprise", "personal"]
    instance_name: str
    """Enterprise instance name (the domain prefix); empty for Personal."""
    region: str
    over_vpc: bool
    namespace: str
    repo: str
    tag: str

    @property
    def repository(self) -> str:
        return f"{self.namespace}/{self.repo}"

    @property
    def url(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(
            self.host, self.edition, self.instance_name, self.region, self.over_vpc,
            self.namespace, self.repo, tag,
        )  # fmt: skip

    def domains(self) -> tuple[str, str]:
        """The (public, VPC) domains of this registry."""
        if self.edition == "personal":
            return (
                f"registry.{self.region}.aliyuncs.com",
                f"registry-vpc.{self.region}.aliyuncs.com",
            )
        base = f"{self.instance_name}-registry"
        return (
            f"{base}.{self.region}.cr.aliyuncs.com",
            f"{base}-vpc.{self.region}.cr.aliyuncs.com",
        )


def parse_image(url: str) -> ImageRef:
    """`host/namespace/repo:tag` of an ACR registry; ValueError says what is wrong."""
    if "@" in url:
        raise ValueError("use a tag, not a digest (host/namespace/repo:tag)")
    host, _, path = url.partition("/")
    if not path:
        raise ValueError("expected <registry host>/<namespace>/<repository>:<tag>")
    repository, _, tag = path.rpartition(":") if ":" in path else (path, "", "latest")
    if not _REPO.match(repository):
        raise ValueError(f"{repository!r} is not <namespace>/<repository> in lowercase")
    if not _TAG.match(tag):
        raise ValueError(f"{tag!r} is not a valid tag")
    namespace, repo = repository.split("/")
    if match := _ENTERPRISE.match(host):
        return ImageRef(
            host, "enterprise", match["instance"], match["region"], bool(match["vpc"]),
            namespace, repo, tag,
        )  # fmt: skip
    if match := _PERSONAL.match(host):
        return ImageRef(
            host, "personal", "", match["region"], bool(match["vpc"]), namespace, repo, tag
        )
    raise ValueError(
        f"{host} is not an Alibaba Cloud Container Registry domain "
        "(<instance>-registry[-vpc].<region>.cr.aliyuncs.com or "
        "registry[-vpc].<region>.aliyuncs.com)"
    )
