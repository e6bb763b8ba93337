"""The two contexts a provider workflow runs in.

LiveCtx sends each `ctx.api(service).method(...)` to the SDK client, waits with
a progress line, and records created resources on disk. DryRunCtx prints the
same call (masked) and returns a Placeholder standing for the response, so the
printed sequence is, by construction, the one a live run sends.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubeinit import kubeconfig as kcfg
from kubeinit import ui
from kubeinit.errors import KubeinitError, UserError
from kubeinit.managed.placeholder import DryRunValueError, Placeholder  # noqa: F401 (imported from here too)
from kubeinit.providers.base import CloudError, Fault

log = logging.getLogger("kubeinit.managed")


class StopWaiting(Exception):
    """--no-wait: the work is started in the cloud; return instead of waiting for it."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class Api:
    """`ctx.api("eks").create_cluster(...)`, `ctx.api("containerservice").managed_clusters.get(...)`."""

    def __init__(self, ctx: Ctx, service: str, path: tuple[str, ...] = ()):
        self._ctx, self._service, self._path = ctx, service, path

    def __getattr__(self, name: str) -> Api:
        if name.startswith("_"):
            raise AttributeError(name)
        return Api(self._ctx, self._service, self._path + (name,))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ctx.call(self._service, self._path, args, kwargs)


class Ctx:
    """What a provider workflow sees. Subclasses differ only in side effects."""

    def __init__(self, provider, spec, record, interval: float | None = None, timeout: float = 2400):
        self.provider, self.spec, self.record = provider, spec, record
        self.interval = provider.poll_interval if interval is None else interval
        self.timeout = timeout
        self.label = f"{provider.title} cluster {spec.name}"
        self.removed = 0  # resources deleted in this run (not counting already-gone ones)
        self.stopped_at: str | None = None  # the step an exception or Ctrl-C left
        self.no_wait: Callable[[], bool] = lambda: False  # --no-wait: whether to return at the next wait

    def api(self, service: str) -> Api:
        return Api(self, service)

    @contextlib.contextmanager
    def step(self, label: str, missing_ok: bool = False) -> Iterator[None]:
        """Name what the calls inside are doing, for errors; missing_ok: NotFound ends the step quietly."""
        prev, self.label = self.label, label
        try:
            yield
        except CloudError as e:
            if not (missing_ok and e.fault.kind == "not_found"):
                self.stopped_at = self.stopped_at or label
                raise
            self.note(f"{label}: already gone")
        except BaseException:  # Ctrl-C included: remember the innermost step for the message
            self.stopped_at = self.stopped_at or label
            raise
        finally:
            self.label = prev

    def ensure(
        self,
        kind: str,
        name: str,
        what: str,
        create: Callable[[], Any],
        intent: dict | None = None,
        failed: Callable[[dict], str | None] | None = None,
    ) -> dict:
        """Create once: reuse the record's entry if there is one, else record the intent, run create()
        and record its result.

        create() makes exactly one creating call and returns the id, or (id, data). intent: what the
        provider's find_<kind> needs to look the resource up if that call is interrupted (the
        re-run looks before creating). failed(entry): why a reused resource failed in the cloud,
        or None; a failed one is deleted and made again.
        """
        entry = self.record.get(kind, name)
        if entry is not None and entry.get("pending"):
            with self.step(f"looking up {what}"):
                found = self.lookup(entry, what)
            if found is not None:
                rid, data = found if isinstance(found, tuple) else (found, {})
                self.record.settle(entry, rid, **data)
                self.note(f"found {what}" + ("" if str(rid) in what else f" {rid}") + ", made by an interrupted run")
        elif entry is not None:
            self.note(f"reusing {what}" + ("" if str(entry["id"]) in what else f" {entry['id']}") + " (recorded)")
        if failed is None and hasattr(self.provider, f"failed_{kind}"):
            failed = functools.partial(getattr(self.provider, f"failed_{kind}"), self)
        if entry is not None and not entry.get("pending"):
            with self.step(f"checking {what}"):
                reason = self.failed_in_cloud(entry, failed) if failed else None
            if not reason:
                return entry
            self.note(f"{what} failed in the cloud ({reason}): deleting it and creating it again")
            self.provider.delete(self, [entry])
            self.record.again(kind, name)
            entry = None
        if entry is None:
            entry = self.record.intend(kind, name, **(intent or {}))
        with self.step(f"creating {what}"):
            try:
                result = create()
            except CloudError as e:
                if e.fault.kind not in ("unavailable", "internal"):  # refused: nothing was made
                    self.record.remove(entry)
                raise
        rid, data = result if isinstance(result, tuple) else (result, {})
        self.record.settle(entry, rid, **data)
        self.created(what, rid)
        return entry

    def lookup(self, entry: dict, what: str) -> Any:
        """An interrupted create's resource, found by name/tag/token: its id, (id, data), or None."""
        return self.provider.find(self, entry)

    def failed_in_cloud(self, entry: dict, failed: Callable[[dict], str | None]) -> str | None:
        return failed(entry)

    def check_free(self, probe: Callable[[], Any], taken: str) -> None:
        """Refuse (UserError, before anything is made) when probe() finds the resource; NotFound passes."""
        try:
            probe()
        except CloudError as e:
            if e.fault.kind == "not_found":
                return
            raise
        raise UserError(taken)

    def decide(self, fn: Callable[[], Any], text: str) -> Any:
        """A value computed from responses (e.g. a nodegroup's widened range); a dry run shows `text`."""
        return fn()

    def all(self, pages: Any) -> list:
        """Read a lazy pager to the end (its requests are sent while iterating)."""
        return [p for p in pages]  # not list(): a dry run's placeholder has no length

    # side effects, per context
    def call(self, service: str, path: tuple[str, ...], args: tuple, kwargs: dict) -> Any:
        raise NotImplementedError

    def wait(
        self, what: str, poll: Callable[[], Any], check: Callable[[Any], Any] | None = None, gone: bool = False
    ) -> Any:
        """Poll until check(response) is True (a str means pending, with that status; a Fault
        fails), or with gone=True until the poll says NotFound."""
        raise NotImplementedError

    def wait_lro(self, what: str, poller: Any) -> Any:
        """Wait for an Azure LROPoller and return its result."""
        raise NotImplementedError

    def when_missing(self, what: str, probe: Callable[[], Any], create: Callable[[], Any]) -> None:
        """Run create() unless probe() says the resource exists (it is then reused, not recorded)."""
        raise NotImplementedError

    def write_kubeconfig(self, path: str, doc: dict | bytes, current: bool = True) -> str:
        raise NotImplementedError

    def note(self, text: str) -> None:
        pass

    def created(self, what: str, rid: Any) -> None:
        pass

    def deleted(self, what: str) -> None:
        self.removed += 1


class LiveCtx(Ctx):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._clients: dict[str, Any] = {}

    def _guarded(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (KubeinitError, KeyboardInterrupt):
            raise
        except Exception as e:  # an SDK error: classify it, or let a bug show itself
            fault = self.provider.classify(e)
            if fault is None:
                raise
            raise CloudError(self.label, fault) from e

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.provider.client(service, self)
        return self._clients[service]

    def all(self, pages):
        return self._guarded(lambda: list(pages))

    def call(self, service, path, args, kwargs):
        log.debug("%s.%s(%s)", service, ".".join(path), _fmt_args(args, kwargs))

        def send():
            fn = functools.reduce(getattr, path, self._client(service))
            return fn(*args, **kwargs)

        return self._guarded(send)

    def _loop(self, what: str, once: Callable[[], Any]) -> Any:
        start = time.monotonic()
        with ui.status(f"waiting until {what}") as st:
            while True:
                done, value = once()
                if done:
                    return value
                elapsed = time.monotonic() - start
                if elapsed > self.timeout:
                    raise KubeinitError(
                        f"timed out after {duration(elapsed)} waiting until {what}; "
                        "it may still finish: run the same command again to resume"
                    )
                if st is not None:
                    st.update(f"waiting until {what}" + (f": {value}" if isinstance(value, str) else ""))
                time.sleep(self.interval)

    def wait(self, what, poll, check=None, gone=False):
        if self.no_wait():
            raise StopWaiting(what)

        def once():
            try:
                r = poll()
            except CloudError as e:
                if gone and e.fault.kind == "not_found":
                    return True, None
                raise
            res = check(r) if check else (not gone)
            if isinstance(res, Fault):
                raise CloudError(f"waiting until {what}", res)
            return (res is True), (res if isinstance(res, str) else r)

        with self.step(f"waiting until {what}"):
            return self._loop(what, once)

    def wait_lro(self, what, poller):
        if self.no_wait():
            raise StopWaiting(what)

        def once():
            self._guarded(lambda: poller.wait(timeout=min(self.interval, 1.0) or 0.01))  # re-raises a failure
            return poller.done(), poller.status()

        with self.step(f"waiting until {what}"):
            self._loop(what, once)
            return self._guarded(poller.result)

    def when_missing(self, what, probe, create):
        if probe():
            self.note(f"using the existing {what}")
            return None
        return create()

    def write_kubeconfig(self, path, doc, current=True):
        return kcfg.merge(path, doc, make_current=current)

    def note(self, text):
        ui.info(text)

    def created(self, what, rid):
        ui.ok(f"created {what}" + ("" if str(rid) in what else f" {rid}"))

    def deleted(self, what):
        super().deleted(what)
        ui.ok(f"deleted {what}")


class DryRunCtx(Ctx):
    def __init__(self, provider, spec, record, *a, **kw):
        record = copy.deepcopy(record)
        record.persist = False  # a dry run remembers nothing
        super().__init__(provider, spec, record, *a, **kw)
        self.n = 0
        self._indent = ""
        self._polling: str | None = None

    def lookup(self, entry, what):
        self.note(f"an interrupted run recorded {what}: look it up first (reuse or delete it if it was made)")
        return None

    def failed_in_cloud(self, entry, failed):
        return None

    def check_free(self, probe, taken):
        probe()
        self.note("stop here if that finds a cluster kubeinit has no record of (the name is taken)")

    def decide(self, fn, text):
        self.note(text)
        return Placeholder(text)

    def call(self, service, path, args, kwargs):
        self.n += 1
        text = f"{service}.{'.'.join(path)}({_fmt_args(args, kwargs)})"
        if self._polling:
            ui.out(f"{self.n:>3}. {self._indent}repeat {text} every {self.interval:g}s until {self._polling}")
        else:
            ui.out(f"{self.n:>3}. {self._indent}{text}")
        return Placeholder(f"#{self.n} {service}.{'.'.join(path)}")

    def wait(self, what, poll, check=None, gone=False):
        self._stop_here(what)
        self._polling = what
        try:
            return poll()
        finally:
            self._polling = None

    def _stop_here(self, what):
        if self.no_wait():
            ui.out(f"     {self._indent}(--no-wait: kubeinit returns here instead of waiting until {what})")
            raise StopWaiting(what)

    def wait_lro(self, what, poller):
        self._stop_here(what)
        self.n += 1
        ui.out(
            f"{self.n:>3}. {self._indent}poll the operation {poller!r} "
            f"(Azure-AsyncOperation) every {self.interval:g}s until {what}"
        )
        return Placeholder(f"#{self.n} operation result")

    def when_missing(self, what, probe, create):
        probe()
        ui.out(f"     {self._indent}only if the {what} does not exist:")
        self._indent += "  "
        try:
            return create()
        finally:
            self._indent = self._indent[:-2]

    def write_kubeconfig(self, path, doc, current=True):
        name = doc if isinstance(doc, Placeholder) else doc.get("current-context")
        ui.out(
            f"     {self._indent}merge context {name} into the kubeconfig {path}"
            + ("" if current else " (the current context is kept)")
        )
        return str(name)

    def note(self, text):
        ui.out(f"     {self._indent}({text})")


def duration(seconds: float) -> str:
    """12 s, 3 min 20 s, 1 h 5 min: a wait's length as a person reads it."""
    s = int(round(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 // 60 else "")


def _fmt_args(args: tuple, kwargs: dict) -> str:
    return ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
