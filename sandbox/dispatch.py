"""The sandbox cloud's request pipeline: identify, authenticate, inject faults, authorize, execute.

Each API call runs its handler inside one store transaction, so it either takes full effect (and is
durable before the reply leaves) or none. Every call, refused or not, is appended to the request
log that `/_sandbox/requests` serves, with server-side times (`received_at`, `started_at`,
`answered_at`, epoch seconds) and the injected `latency_ms`, so a client's critical path can be
measured from the server's side.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox import envelopes, journal
from sandbox.auth import ANONYMOUS, Authenticator, Caller
from sandbox.call import Call, Params, new_request_id
from sandbox.clock import Clock
from sandbox.contract import Contract, received
from sandbox.errors import ApiError, internal_error, invalid_version, not_found_action
from sandbox.faults import Faults
from sandbox.permission_gate import authorize
from sandbox.regions import addressed_region
from sandbox.routes import PRODUCTS, Product, Route, RouteTable
from sandbox.seed import seed_world
from sandbox.services.sae import engine
from sandbox.store import Store
from sandbox.wire import Identified, RawRequest, identify, unsigned
from sandbox.world import Timing, World

logger = logging.getLogger("sandbox")

SECRET_FIELDS = (
    "secret",
    "security_token",
    "password",
    "AuthorizationToken",
    "SecretData",
    "OssAkSecret",
)


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """An error status, or ACR's 200 whose body says `IsSuccess: false` (envelopes.error)."""
        return self.status >= 400 or self.body.get("IsSuccess") is False


class Sandbox:
    """One sandbox cloud: a world, its durable state, fault rules and the request log."""

    def __init__(self, world: World, store: Store) -> None:
        self.world = world
        self._initial_world = world
        self.store = store
        self.routes = RouteTable()
        self.contract = Contract((p.code, p.version) for p in PRODUCTS)
        self.faults = Faults()
        self.clock = Clock()
        self.auth = Authenticator(self.clock)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._uid_names = {a.uid: a.name for a in world.accounts}
        with store.transaction() as tx:
            if tx.get_meta("seeded") is None:
                seed_world(tx, world)
                tx.set_meta("seeded", "1")

    # -- background work -----------------------------------------------------------------------

    def tick(self) -> int:
        """Advance time-driven state (SAE change orders); returns how much is still moving."""
        with self.store.transaction() as tx:
            return engine.tick(tx, self.world, self.clock.now())

    def run_engine(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Tick until `stop` is set; errors are logged, never fatal to the server."""
        while not stop.wait(interval):
            try:
                self.tick()
            except Exception:
                logger.exception("change-order engine tick failed")

    # -- admin ---------------------------------------------------------------------------------

    def set_timing(self, changes: dict[str, Any]) -> Timing:
        """Change the world's timing from now on: change orders started afterwards take the new
        `change_order_seconds` (running ones keep theirs). Unknown or invalid fields: ValueError."""
        timing = Timing.model_validate({**self.world.timing.model_dump(), **changes})
        self.world = self.world.model_copy(update={"timing": timing})
        return timing

    def reset(self) -> None:
        """Back to the world file's initial state: resources, timing, faults, the request log and
        the clock (its offset dropped)."""
        self.world = self._initial_world
        self.clock.reset()
        with self.store.transaction() as tx:
            tx.clear()
            seed_world(tx, self.world)
            tx.set_meta("seeded", "1")
        self.faults.clear()
        with self._log_lock:
            self._log.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._log)

    def state(self) -> dict[str, Any]:
        """Every resource per account (by name) and region; secret values masked."""
        with self.store.transaction() as tx:
            dump = tx.dump()
        named = {
            self._uid_names.get(uid, uid or "global"): regions for uid, regions in dump.items()
        }
        masked: dict[str, Any] = _mask(named)
        return masked

    # -- the API pipeline ----------------------------------------------------------------------

    def handle(self, raw: RawRequest) -> Reply:
        request_id = new_request_id()
        started = time.time()
        entry: dict[str, Any] = {
            "account": None,
            "account_uid": None,
            "product": None,
            "action": raw.headers.get("x-acs-action") or dict(raw.query).get("Action"),
            "write": False,
            "region": None,
            "params": {},
            "ignored": [],
            "received_at": raw.received_at or started,
            "started_at": started,
            "latency_ms": 0,
            "request_id": request_id,
        }
        product: Product | None = None
        try:
            ident = identify(raw)
            product = self.routes.product(ident.version)
            if ident.scheme == "anonymous" and not self._served_anonymously(raw, ident, product):
                raise unsigned()
            if product is None:
                raise invalid_version(ident.version)
            entry["product"] = product.code
            if ident.scheme == "anonymous":
                caller = ANONYMOUS
            else:
                with self.store.transaction() as tx:
                    caller = self.auth.authenticate(raw, ident, tx)
            entry.update(account=caller.account_name, account_uid=caller.account)
            try:  # the contract: a known action, by an allowed method, with valid parameters
                route = self._route(raw, ident, product)
                entry.update(action=route.action, write=route.write)
                sent = list(received(raw, ident))  # the body parsed once, for log and check
                entry["params"] = _mask({key: value for _, key, value in sent})
                checked = self.contract.action(ident.version, route.action).check(raw.method, sent)
            except ApiError as err:
                asked = entry.get("action") or ident.action or f"{raw.method} {raw.path}"
                journal.record(product.code, str(asked), code=err.code)
                raise
            entry["ignored"] = checked.ignored
            if checked.ignored:
                journal.record(product.code, route.action, ignored=checked.ignored)
            region = addressed_region(
                regional=product.regional, headers=raw.headers, params=checked.wire
            )
            entry["region"] = region
            delay = self.faults.latency(product.code, route.action, caller.account_name)
            if delay:
                entry["latency_ms"] = round(delay * 1000)
                time.sleep(delay)
            payload, lost = self._execute(
                Params(checked.wire, checked.typed), region, route, caller, request_id
            )
            if lost:
                raise ApiError(
                    503,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                )
            body = envelopes.success(product.envelope, payload, request_id, trace_id=route.trace_id)
            reply = Reply(200, body)
        except ApiError as err:
            reply = self._error_reply(product, err, request_id)
        except Exception:
            logger.exception("sandbox handler failed (request %s)", request_id)
            reply = self._error_reply(product, internal_error(), request_id)
        entry.update(
            status=reply.status,
            code=reply.body.get("Code") if reply.failed else None,
            answered_at=time.time(),
        )
        with self._log_lock:
            entry["seq"] = len(self._log) + 1
            self._log.append(entry)
        return reply

    def _served_anonymously(
        self, raw: RawRequest, ident: Identified, product: Product | None
    ) -> bool:
        route = self._find_route(raw, ident, product) if product else None
        return route is not None and route.anonymous

    def _find_route(self, raw: RawRequest, ident: Identified, product: Product) -> Route | None:
        if product.style == "RPC":
            return self.routes.rpc(ident.version, ident.action)
        return self.routes.roa(ident.version, raw.method, raw.path)

    def _route(self, raw: RawRequest, ident: Identified, product: Product) -> Route:
        route = self._find_route(raw, ident, product)
        if route is None:
            raise not_found_action(ident.action or f"{raw.method} {raw.path}")
        return route

    def _execute(
        self, params: Params, region: str | None, route: Route, caller: Caller, request_id: str
    ) -> tuple[dict[str, Any], bool]:
        product = route.product
        verdict = self.faults.judge(product.code, route.action, caller.account_name)
        if verdict.error is not None:
            raise verdict.error
        if verdict.advance_clock_s:
            self.clock.advance(verdict.advance_clock_s)
        with self.store.transaction() as tx:
            call = Call(
                route=route,
                params=params,
                caller=caller,
                tx=tx,
                world=self.world,
                request_id=request_id,
                addressed_region=region,
                now=self.clock.now(),
            )
            authorize(call)
            payload = route.handler(call)
        return payload, verdict.lose_response

    def _error_reply(self, product: Product | None, err: ApiError, request_id: str) -> Reply:
        envelope = product.envelope if product else "pop"
        host = product.host if product else "sandbox.aliyuncs.com"
        return Reply(err.status, envelopes.error(envelope, err, request_id, host))


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("******" if k in SECRET_FIELDS else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value
