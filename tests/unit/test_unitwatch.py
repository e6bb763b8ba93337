"""The executor watches the kubelet while wait-control-plane and mark-control-plane wait on it:
a kubelet that exits or restarts ends the wait at once with its own error line.

The API server is the test double (tests/unit/apiserver.py), answering as a server that never
becomes ready; the host is this machine (LocalConnection) except for systemd's answers about
the kubelet, which are scripted (this machine runs no kubelet, often no systemd). The real
thing, on a systemd machine with a kubelet that exits: tests/machines/test_kubelet.py."""

from __future__ import annotations

import time

import pytest
from apiserver import make_cluster
from phase_harness import cluster_file, run_phases

from kubeinit import spec as specmod
from kubeinit.connection import LocalConnection, Result
from kubeinit.errors import StepFailed
from kubeinit.unitwatch import UnitWatch

FATAL = (
    "F1205 23:20:41.118934    2214 server.go:269] failed to run Kubelet: failed to create kubelet: open "
    "/dev/kmsg: no such file or directory"
)
JOURNAL = f"""I1205 23:20:35.002211    2214 server.go:416] Version: v1.20.2
E1205 23:20:40.113322    2214 kubelet.go:1228] Image garbage collection failed once
{FATAL}
goroutine 1 [running]:
k8s.io/kubernetes/vendor/k8s.io/klog/v2.stacks(0xc000010001, 0xc0001d6000, 0x9c, 0x1f4)
kubelet.service: Main process exited, code=exited, status=255/EXCEPTION
kubelet.service: Failed with result 'exit-code'.
"""
RUNNING = {
    "LoadState": "loaded",
    "ActiveState": "active",
    "SubState": "running",
    "NRestarts": "0",
    "InvocationID": "5f0c2e6a9d1b4c7e8f3a2b1c0d9e8f7a",
}
EXITED = {**RUNNING, "ActiveState": "activating", "SubState": "auto-restart"}


class KubeletHost(LocalConnection):
    """This machine, but `systemctl show kubelet` answers the scripted states in turn (the
    last one repeats) and the kubelet's journal is `journal`."""

    def __init__(self, states: list[dict], journal: str = JOURNAL, rc: int = 0):
        super().__init__("cp-1")
        self.states, self.journal, self.rc, self.shown = states, journal, rc, 0
        self.journal_asked: list[str] = []

    def run(self, argv, stdin=None, timeout=600):
        if list(argv[:3]) == ["systemctl", "show", "kubelet"]:
            state = self.states[min(self.shown, len(self.states) - 1)]
            self.shown += 1
            return Result(self.rc, "".join(f"{k}={v}\n" for k, v in state.items()).encode(), b"")
        if list(argv[:2]) == ["sh", "-c"] and argv[2].startswith("journalctl "):
            self.journal_asked.append(argv[2])
            return Result(0, self.journal.encode(), b"")
        return super().run(argv, stdin, timeout)


@pytest.fixture
def starting(tmp_path):
    """An API server that keeps answering as a starting one (403) for the whole test."""
    c = make_cluster(tmp_path / "cluster")
    c.api.starting(forbidden=10_000, unready=0)
    yield c
    c.api.stop()


def run(cluster, host: LocalConnection, phases=("wait-control-plane",)):
    spec = specmod.from_dict(cluster_file(cluster, kubernetesVersion="v1.33.1"))
    return run_phases(spec, phases, connect=lambda h: host)


def test_a_kubelet_that_exits_during_the_wait_stops_it_at_once_with_its_fatal_line(starting):
    host = KubeletHost([RUNNING, RUNNING, EXITED])
    t0 = time.monotonic()
    with pytest.raises(StepFailed) as e:
        run(starting, host)
    took = time.monotonic() - t0
    assert took < 6, f"stopped after {took:.1f} s, not at once"
    msg = str(e.value)
    assert msg.startswith("cp-1: phase wait-control-plane failed at 'the API server answers /readyz"), msg
    assert (
        f"the kubelet exited (systemd restarts it, and it will exit again) while kubeinit waited for it: {FATAL} "
        "(`journalctl -u kubelet` on the host shows its whole log)" in msg
    ), msg
    assert host.shown == 3, "one `systemctl show` per second of waiting"
    # the lines of the invocation that ended (a fatal kubelet prints every goroutine's stack after its F line)
    assert host.journal_asked[0].startswith(f'journalctl _SYSTEMD_INVOCATION_ID="{RUNNING["InvocationID"]}" ')


def test_a_kubelet_restarted_during_the_wait_stops_it(starting):
    host = KubeletHost([RUNNING, {**RUNNING, "InvocationID": "0" * 32}])
    with pytest.raises(StepFailed, match=r"the kubelet was restarted while kubeinit waited for it: F1205 "):
        run(starting, host)


def test_a_kubelet_that_is_not_running_when_the_wait_begins_stops_it(starting):
    host = KubeletHost([{**RUNNING, "ActiveState": "failed", "SubState": "failed"}], journal="no klog here\n")
    with pytest.raises(
        StepFailed,
        match=r"the kubelet failed while kubeinit waited for it, with no error line of "
        r"its own \(`journalctl -u kubelet`",
    ):
        run(starting, host)


def test_mark_control_plane_watches_the_kubelet_while_the_node_is_not_registered(tmp_path):
    c = make_cluster(tmp_path / "cluster")
    try:
        with pytest.raises(StepFailed, match=r"phase mark-control-plane failed .*the kubelet exited .*F1205 "):
            run(c, KubeletHost([RUNNING, EXITED]), phases=("mark-control-plane",))
    finally:
        c.api.stop()


def test_no_kubelet_unit_or_no_systemd_watches_nothing_and_the_wait_goes_on(tmp_path):
    for host in (
        KubeletHost([{"LoadState": "not-found", "ActiveState": "inactive"}]),
        KubeletHost([{}], rc=1),
    ):  # "System has not been booted with systemd"
        c = make_cluster(tmp_path / f"cluster-{host.rc}")
        c.api.starting(forbidden=2, unready=1)
        try:
            run(c, host)
        finally:
            c.api.stop()
        assert host.shown == 1, "asked once, then the watch is off"


def test_the_watch_asks_systemd_at_most_once_per_interval():
    host = KubeletHost([RUNNING])
    watch = UnitWatch(host, "kubelet", every=0.3)
    stop = time.monotonic() + 1.0
    while time.monotonic() < stop:
        watch()
        time.sleep(0.01)
    assert 3 <= host.shown <= 5, host.shown


def test_the_fatal_line_is_preferred_to_later_error_lines():
    journal = f"{FATAL}\nE1205 23:20:41.2 2214 foo.go:1] something after it\n"
    host = KubeletHost([RUNNING, EXITED], journal=journal)
    watch = UnitWatch(host, "kubelet", every=0)
    watch()
    with pytest.raises(Exception, match="open /dev/kmsg"):
        watch()
