"""Self-tests of the machine harness: if these pass, kubeinit's machine tests stand on real
hosts that behave like the ones users have (systemd, sshd, sudo, a download mirror)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import machines as mlib
import pytest
from testimage import busybox_image


def test_three_machines_answer_over_ssh(machines):
    prefix = machines[0].network.prefix  # kim, unless another run holds kib0
    assert [m.name for m in machines] == [f"{prefix}1", f"{prefix}2", f"{prefix}3"]
    seen = [m.ssh("hostname; cat /etc/machine-id; ip -4 -o addr show host0").out.split("\n") for m in machines]
    for m, lines in zip(machines, seen, strict=True):
        assert len(lines) == 4, f"{m.name} answered: {lines!r}"
        hostname, machine_id, addr, _ = lines
        assert hostname == m.name
        assert f" {m.ip}/" in addr
        assert len(machine_id) == 32
    assert len({s[1] for s in seen}) == 3, "machine-ids must be per machine"
    assert len({m.host_key() for m in machines}) == 3, "host keys must be per machine"
    # machines see each other by name (the /etc/hosts written at creation)
    assert machines[0].ssh(f"getent hosts {machines[2].name}").out.split()[0] == machines[2].ip


def test_kube_user_has_passwordless_sudo(machines):
    r = machines[1].ssh("id -un; sudo -n true && sudo -n id -u", user="kube")
    assert r.out.split() == ["kube", "0"]


def test_egress_guard_rejects_outside_addresses_at_once(machines):
    m = machines[0]
    # 192.0.2.1 (TEST-NET), the cloud metadata address and the host's own non-bridge
    # addresses must all be refused inside the machine, in well under a second each.
    ip_addr = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    host_ips = [line.split()[3].split("/")[0] for line in ip_addr.splitlines()]
    outside = ["192.0.2.1", "169.254.169.254"] + [
        ip for ip in host_ips if not ip.startswith("127.") and ip != m.network.gateway
    ]
    before = _reject_count(m)
    got = {}  # ip -> (curl exit code, milliseconds, stderr)
    for ip in outside:
        r = m.ssh(
            f"s=$(date +%s%N); curl -sS -m 5 -o /dev/null http://{ip}:80/; rc=$?; "
            f"echo $rc $(( ($(date +%s%N) - s) / 1000000 ))",
            check=False,
        )
        rc, ms = map(int, r.out.split())
        got[ip] = (rc, ms, r.err.strip())
    # exit 7 = connection refused (REJECT); a DROP would show exit 28 after 5 s
    assert all(rc == 7 and ms < 1000 for rc, ms, _ in got.values()), got
    assert _reject_count(m) >= before + len(outside), "the guard, not the host, must refuse"
    # DNS points at 127.0.0.1 where nothing listens: lookups fail locally and at once
    r = m.ssh(
        "s=$(date +%s%N); getent hosts deb.debian.org; rc=$?; echo $rc $(( ($(date +%s%N) - s) / 1000000 ))",
        check=False,
    )
    rc, ms = map(int, r.out.split()[-2:])
    assert rc != 0 and ms < 1000, r.out
    # inside the test range everything passes
    assert m.ssh(f"bash -c 'echo > /dev/tcp/{machines[1].ip}/22'", check=False).ok


def _reject_count(m) -> int:
    out = m.ssh("iptables -w -L KI-EGRESS -v -x -n").out
    return sum(int(line.split()[0]) for line in out.splitlines() if "tcp-reset" in line)


def test_mirror_layout_and_manifest(artifact_mirror):
    v = artifact_mirror.versions
    manifest = json.loads((artifact_mirror.root / "manifest.json").read_text())
    assert manifest["versions"] == v
    assert set(v) == {"arch", "containerd", "runc", "cni_plugins", "etcd", "kubectl"}
    assert "crictl" in manifest["missing"]
    for art in manifest["files"].values():
        assert (artifact_mirror.root / art["path"]).is_file()


def test_mirror_downloads_match_published_checksums(machines, artifact_mirror):
    m, v, a = machines[2], artifact_mirror.versions, artifact_mirror.versions["arch"]
    gh = "github.com"
    cases = {  # artifact path -> published checksum file (formats differ, as upstream)
        f"{gh}/containerd/containerd/releases/download/v{v['containerd']}/"
        f"containerd-{v['containerd']}-linux-{a}.tar.gz": ".sha256sum",
        f"{gh}/opencontainers/runc/releases/download/v{v['runc']}/runc.{a}": "runc.sha256sum",
        f"{gh}/containernetworking/plugins/releases/download/v{v['cni_plugins']}/"
        f"cni-plugins-linux-{a}-v{v['cni_plugins']}.tgz": ".sha256",
        f"{gh}/etcd-io/etcd/releases/download/v{v['etcd']}/etcd-v{v['etcd']}-linux-{a}.tar.gz": "SHA256SUMS",
        f"dl.k8s.io/release/v{v['kubectl']}/bin/linux/{a}/kubectl": ".sha256",
    }
    for path, sums in cases.items():
        name = path.rsplit("/", 1)[1]
        sums_url = (
            f"{artifact_mirror.url}/{path}{sums}"
            if sums.startswith(".")
            else f"{artifact_mirror.url}/{path.rsplit('/', 1)[0]}/{sums}"
        )
        r = m.ssh(
            f"cd /tmp && curl -fsS -o {name} {artifact_mirror.url}/{path} && sha256sum {name} && curl -fsS {sums_url}"
        )
        got, published = r.out.split("\n", 1)
        digest = got.split()[0]
        lines = [ln.split() for ln in published.splitlines()]
        want = [f[0] for f in lines if len(f) == 1 or f[1] == name]
        assert want == [digest], f"{name}: {got!r} vs published {published!r}"
    listing = m.ssh(
        f"tar tzf /tmp/containerd-{v['containerd']}-linux-{a}.tar.gz; tar tzf /tmp/etcd-v{v['etcd']}-linux-{a}.tar.gz"
    ).out.split()
    for member in (
        "bin/containerd",
        "bin/containerd-shim-runc-v2",
        "bin/ctr",
        f"etcd-v{v['etcd']}-linux-{a}/etcd",
        f"etcd-v{v['etcd']}-linux-{a}/etcdctl",
    ):
        assert member in listing
    assert m.ssh("chmod +x /tmp/kubectl && /tmp/kubectl version --client").out.startswith(
        f"Client Version: v{v['kubectl']}"
    )


def test_machine_stops_and_comes_back(machines):
    m = machines[2]
    key, mid = m.host_key(), m.ssh("cat /etc/machine-id; echo kept > /root/marker").out
    t0 = time.monotonic()
    m.stop()
    stopped = time.monotonic() - t0
    assert not m.is_running()
    with pytest.raises(OSError):
        socket.create_connection((m.ip, 22), timeout=1).close()
    m.start()
    # like a rebooted host: same identity and disk, fresh processes
    assert m.host_key() == key
    assert m.ssh("cat /etc/machine-id; cat /root/marker").out == mid + "kept\n"
    assert stopped < 10, f"clean stop took {stopped:.1f}s"


def test_guest_reboot_comes_back(machines):
    m = machines[1]
    boot_id = m.ssh("cat /proc/sys/kernel/random/boot_id").out
    m.ssh("systemctl reboot", check=False)  # nspawn exits 133; the supervisor restarts it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            m.wait_ready(timeout=10)
            if m.ssh("cat /proc/sys/kernel/random/boot_id").out != boot_id:
                break
        except Exception:  # noqa: BLE001 - still going down or coming up
            pass
    else:
        pytest.fail(f"{m.name} did not come back:\n{m.console_tail()}")


def test_oci_image_imports_and_runs_with_containerd_from_mirror(machines, artifact_mirror):
    """Harness self-test only: installing containerd is the executor's job in real tests."""
    m, v = machines[0], artifact_mirror.versions
    base = f"{artifact_mirror.url}/github.com"
    m.ssh(
        f"curl -fsS {base}/containerd/containerd/releases/download/v{v['containerd']}/"
        f"containerd-{v['containerd']}-linux-{v['arch']}.tar.gz | tar xz -C /usr/local && "
        f"curl -fsS -o /usr/local/sbin/runc {base}/opencontainers/runc/releases/download/"
        f"v{v['runc']}/runc.{v['arch']} && chmod 755 /usr/local/sbin/runc && "
        "systemd-run --unit=containerd-selftest /usr/local/bin/containerd && "
        "for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done"
    )
    tar, ref = busybox_image()
    m.put(tar, "/tmp/image.tar")
    assert ref in m.ssh("ctr -n k8s.io image import /tmp/image.tar").out
    # runc needs a session keyring (@keyring) and writable cgroups (the cgroup-rw unit)
    assert m.ssh(f"ctr -n k8s.io run --rm {ref} t1 echo hello").out == "hello\n"
    # The image's default command is `sleep infinity` as PID 1, which ignores SIGTERM: this
    # container would hold the guest's shutdown for 90 s unless stop() drains it first.
    r = m.ssh(
        f"ctr -n k8s.io run -d --memory-limit 67108864 {ref} sleeper >/dev/null && "
        "cat /sys/fs/cgroup/memory/k8s.io/sleeper/memory.limit_in_bytes"
    )
    assert r.out.strip() == "67108864"
    t0 = time.monotonic()
    m.stop()
    assert time.monotonic() - t0 < 10
    assert not mlib._tree_pids(m.cgroups)
    m.start()


def test_forced_stop_leaves_nothing_behind(machine_image, machine_network):
    """The SIGKILL path (timeout 0), then destroy: no process, cgroup, veth or mount stays."""
    name = f"{machine_network.prefix}x50"
    m = mlib.up(1, machine_network, machine_image, prefix=f"{machine_network.prefix}x", first=50)[0]
    try:
        m.stop(timeout=0)
        assert not m.is_running()
        assert not any(d.exists() for d in m.cgroups)
        assert m.cgroups and not mlib._tree_pids(m.cgroups)
    finally:
        m.destroy()
    assert not (machine_network.state / name).exists()
    assert name not in open("/proc/self/mountinfo").read()
    assert not Path(f"/sys/class/net/vb-{name}").exists()
