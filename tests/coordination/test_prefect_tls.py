"""Our Prefect API client follows Prefect's TLS settings (issue 14, item 5), against a real
Prefect server served over HTTPS with a certificate from a test CA (trustme).

With PREFECT_API_SSL_CERT_FILE naming that CA, the app lock, a ledger write and read (our quick
client) and a rate-limit slot all work; without it the quick client refuses the certificate as
Prefect's own client does; with PREFECT_API_TLS_INSECURE_SKIP_VERIFY it accepts it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import trustme
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.settings import (
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    temporary_settings,
)

from crossdeploy.app_lock import app_lock, lock_name
from crossdeploy.prefect_api import patiently, quick_client, read_variable, write_variable
from crossdeploy.quota import occupy_slots
from tests.support.deploy_support import APP_UID
from tests.support.prefect_server import PrefectServer
from tests.support.specs import make_spec

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    tmp = tmp_path_factory.mktemp("prefect-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    tls = (tmp / "cert.pem", tmp / "key.pem")
    with PrefectServer(tmp / "home", tls=tls, ca_file=tmp / "ca.pem").serving() as server:
        yield server


def test_lock_ledger_and_rate_limit_over_https_with_a_private_ca(server: PrefectServer) -> None:
    assert server.api_url.startswith("https://")
    spec = make_spec(app={"name": "lock-tls"})
    with server.api():
        with app_lock(spec, APP_UID, flow_run_id=None, wait_seconds=10) as waited:
            assert not waited
            with quick_client() as client:
                limit = client.read_global_concurrency_limit_by_name(lock_name(spec, APP_UID))
                assert limit.active_slots == 1
                write_variable(client, "crossdeploy-tls-ledger", [{"entry": 1}])
                assert read_variable(client, "crossdeploy-tls-ledger") == [{"entry": 1}]
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name="tls-rate", limit=2, slot_decay_per_second=2)
                )
        patiently(lambda: occupy_slots("tls-rate", 1))
        with quick_client() as client:
            assert client.read_global_concurrency_limit_by_name("tls-rate").active_slots >= 1
            limit = client.read_global_concurrency_limit_by_name(lock_name(spec, APP_UID))
            assert limit.active_slots == 0


def test_without_the_ca_the_certificate_is_refused_and_skip_verify_accepts_it(
    server: PrefectServer,
) -> None:
    with server.api(), temporary_settings(updates={PREFECT_API_SSL_CERT_FILE: None}):
        with pytest.raises(httpx.ConnectError), quick_client() as client:
            patiently(lambda: client.read_variable_by_name("anything"))  # at once, not for minutes
        skip = {PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}
        with temporary_settings(updates=skip), quick_client() as client:
            assert client.read_variable_by_name("nothing-here") is None
