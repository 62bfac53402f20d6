"""Which region a request addressed, as the cloud knows it from the endpoint it reached.

SAE, VPC and CR are regional: `sae.cn-hangzhou.aliyuncs.com` serves cn-hangzhou only, and a client
built for another region finds nothing there (SAE "Endpoints",
https://help.aliyun.com/en/sae/api-sae-2019-05-06-endpoint, and the "Endpoints" pages of the VPC
and CR APIs: one endpoint per region). RAM and STS are global. A request to the sandbox reaches
one address for every region, so the region comes from, in order
(shared/contracts/interfaces.md section 6):

1. a real endpoint host name in `Host` (`<product>[-vpc].<region>.aliyuncs.com`);
2. the header `x-sandbox-region`, which the credentials block adds when an endpoint is overridden;
3. the API's own `RegionId` parameter.

A regional request with none of these is refused (`Sandbox.MissingRegion`): the real cloud never
has to guess, so neither does the sandbox. A `RegionId` that names another region than the one
addressed is refused too (the documents are silent; the stricter reading, which catches a client
built for the wrong region).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sandbox import chosen_codes

REGION_HEADER = "x-sandbox-region"
_HOST_REGION = re.compile(r"^[a-z]+(?:-vpc)?\.([a-z]{2}-[a-z0-9-]+)\.aliyuncs\.com(?::\d+)?$")


def addressed_region(
    *, regional: bool, headers: Mapping[str, str], params: Mapping[str, str]
) -> str | None:
    """The region a request addressed; None for a global product."""
    if not regional:
        return None
    host = _HOST_REGION.match(headers.get("host", ""))
    named = params.get("RegionId") or None
    region = (host.group(1) if host else None) or headers.get(REGION_HEADER) or named
    if not region:
        raise chosen_codes.MISSING_REGION.error(
            "The request names no region: send it to a regional endpoint host "
            "(<product>.<region>.aliyuncs.com), set the header x-sandbox-region (the "
            "AlibabaCloudCredentials block does this when its endpoint is overridden), or pass "
            "RegionId."
        )
    if named and named != region:
        raise chosen_codes.REGION_MISMATCH.error(
            f"RegionId {named} is not the region this request addressed ({region}): build the "
            f"client for {named}."
        )
    return region
