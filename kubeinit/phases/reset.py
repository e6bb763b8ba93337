"""reset: undo what init/up did on a host, as kubeadm reset does (§1.3).

preflight          read-only: what of kubeinit's (and kubeadm's) state this host has.
remove-etcd-member kubeinit runs a one-member etcd: there is no cluster to remove the
                   member from (its data goes with cleanup-node); a Skip says so.
cleanup-node       stop the kubelet (if running) and remove Kubernetes pods through the
                   CRI (if any); stop, disable and remove kubeinit's etcd unit, its data
                   dir, its install stamp and applied record; empty the manifests dir, the
                   kubelet dir and the cert dir; delete kubeadm's kubeconfig files.

Kept on purpose, as kubeadm keeps them (Notices say so): the container runtime
(containerd, runc, the CNI plugins, crictl) and the etcd binaries, iptables/nftables/IPVS
rules, the CNI config in /etc/cni/net.d, and $HOME/.kube/config.

Every removal is planned from one probe and is a Skip when already absent: a second reset
changes nothing.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Iterator

from kubeinit.errors import UserError
from kubeinit.phases import etcd
from kubeinit.phases.control_plane import MANIFESTS
from kubeinit.phases.install import STAMPS
from kubeinit.plan import Context, Target
from kubeinit.steps import Check, Notice, Run, Skip, Step

KUBELET_DIR = "/var/lib/kubelet"
CNI_CONF = "/etc/cni/net.d"
ETCD_STAMP = f"{STAMPS}/etcd.stamp"
KUBECONFIG_FILES = ("admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
                    "controller-manager.conf", "scheduler.conf")
# Directories whose contents reset must never empty, whatever --cert-dir says.
_PROTECTED = {"/", "/etc", "/usr", "/usr/local", "/usr/lib", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/lib",
              "/var", "/var/lib", "/home", "/root", "/boot", "/opt", "/srv", "/tmp", "/run", "/proc", "/sys",
              "/dev", "/etc/ssl", "/etc/systemd", "/etc/systemd/system", "/etc/kubernetes"}


def cert_dir(ctx: Context) -> str:
    """The cert dir whose contents cleanup-node removes, refused when it is not a dir of its own."""
    d = posixpath.normpath(ctx.cert_dir or "")
    if not d.startswith("/") or d in _PROTECTED or d.count("/") < 2:
        raise UserError(f"the cert dir {ctx.cert_dir!r} is not one reset may empty (it must be an absolute path "
                        "of its own, like /etc/kubernetes/pki)")
    return d


def kubeconfig_paths(ctx: Context) -> list[str]:
    return [posixpath.join(ctx.kubeconfig_dir, f) for f in KUBECONFIG_FILES]


def probe(ctx: Context) -> str:
    """One read-only script: `key=value` lines about everything reset may remove."""
    files = [etcd.UNIT, etcd.DATA_DIR, ETCD_STAMP, etcd.APPLIED, *kubeconfig_paths(ctx)]
    dirs = [MANIFESTS, KUBELET_DIR, cert_dir(ctx), CNI_CONF]
    q = " ".join(shlex.quote(p) for p in files)
    dq = " ".join(shlex.quote(p) for p in dirs)
    return (
        "systemctl show etcd -p ActiveState -p UnitFileState 2>/dev/null | sed 's/^/etcd./'\n"
        "systemctl show kubelet -p ActiveState 2>/dev/null | sed 's/^/kubelet./'\n"
        f"for p in {q}; do [ -e \"$p\" ] && echo \"exists=$p\"; done\n"
        f"for d in {dq}; do [ -n \"$(ls -A \"$d\" 2>/dev/null)\" ] && echo \"nonempty=$d\"; done\n"
        f"echo \"mounts=$(awk '$2 ~ \"^{KUBELET_DIR}/\"' /proc/mounts 2>/dev/null | wc -l)\"\n"
        "if command -v crictl >/dev/null 2>&1; then echo \"pods=$(crictl --timeout 5s pods -q 2>/dev/null | wc -l)\"; fi\n"
        "true\n"
    )


class State:
    def __init__(self, out: str):
        self.values: dict[str, str] = {}
        self.exists: set[str] = set()
        self.nonempty: set[str] = set()
        for line in out.splitlines():
            k, sep, v = line.partition("=")
            if not sep:
                continue
            if k == "exists":
                self.exists.add(v)
            elif k == "nonempty":
                self.nonempty.add(v)
            else:
                self.values[k] = v.strip()

    def int(self, key: str) -> int:
        try:
            return int(self.values.get(key, "0") or 0)
        except ValueError:
            return 0

    @property
    def etcd_active(self) -> bool:
        return self.values.get("etcd.ActiveState") in ("active", "activating", "reloading")

    @property
    def kubelet_active(self) -> bool:
        return self.values.get("kubelet.ActiveState") in ("active", "activating", "reloading")


def gather(ctx: Context, target: Target) -> tuple[list[tuple[str, ...]], list[str]]:
    return [("sh", "-c", probe(ctx))], []


def state(ctx: Context, target: Target) -> State:
    return State(target.facts.run("sh", "-c", probe(ctx)).out)


def found(ctx: Context, s: State) -> list[str]:
    """What of kubeinit's/kubeadm's state the host has, in words."""
    out = []
    if etcd.UNIT in s.exists:
        out.append(f"etcd unit ({s.values.get('etcd.ActiveState') or 'unknown'})")
    elif s.etcd_active:
        out.append("an etcd service kubeinit did not install (left alone)")
    if s.kubelet_active:
        out.append("a running kubelet")
    if s.int("pods"):
        out.append(f"{s.int('pods')} pod sandboxes")
    out += [p for p in (etcd.DATA_DIR, ETCD_STAMP, etcd.APPLIED) if p in s.exists]
    out += [f"{d}/*" for d in (MANIFESTS, KUBELET_DIR, cert_dir(ctx)) if d in s.nonempty]
    confs = [p for p in kubeconfig_paths(ctx) if p in s.exists]
    if confs:
        out.append(f"{len(confs)} kubeconfig file{'s' if len(confs) != 1 else ''} in {ctx.kubeconfig_dir}")
    return out


def plan_preflight(ctx: Context, target: Target) -> Iterator[Step]:
    s = state(ctx, target)
    what = found(ctx, s)
    if what:
        yield Check("reset", True, "found: " + ", ".join(what))
    else:
        yield Skip("nothing of kubeinit's or kubeadm's to reset on this host")


def plan_remove_etcd_member(ctx: Context, target: Target) -> Iterator[Step]:
    yield Skip("kubeinit's etcd has one member, on this host: there is no etcd cluster to remove it from "
               f"(cleanup-node removes its data, {etcd.DATA_DIR}); multi-member etcd is not built yet")


def _rm(paths: list[str], note: str) -> Run:
    return Run(("rm", "-rf", "--one-file-system", "--", *paths), note=note)


def _empty(d: str, note: str) -> Run:
    # The directory stays (kubeadm's cleanDir); its entries, dotfiles too, go.
    return Run(("sh", "-c", f"find {shlex.quote(d)} -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system -- {{}} +"),
               note=note)


def plan_cleanup(ctx: Context, target: Target) -> Iterator[Step]:
    s = state(ctx, target)
    pki = cert_dir(ctx)

    # kubelet and its pods first: they would restart what is removed below
    if s.kubelet_active:
        yield Run(("systemctl", "stop", "kubelet"), note="stop the kubelet")
    else:
        yield Skip("the kubelet is not running")
    if s.int("pods"):
        yield Run(("sh", "-c", "crictl --timeout 30s stopp $(crictl pods -q) && crictl --timeout 30s rmp -a -f"),
                  note="stop and remove the Kubernetes pods (CRI)")

    # etcd
    ours = etcd.UNIT in s.exists
    if ours and (s.etcd_active or s.values.get("etcd.UnitFileState") in ("enabled", "enabled-runtime")):
        yield Run(("systemctl", "disable", "--now", "-q", "etcd"), note="stop and disable etcd")
    elif ours:
        yield Skip("etcd is stopped and disabled")
    if ours:
        yield Run(("sh", "-c", f"rm -f {etcd.UNIT} && systemctl daemon-reload && systemctl reset-failed etcd 2>/dev/null"
                   "; true"), note=f"remove {etcd.UNIT}")
    else:
        yield Skip(f"{etcd.UNIT} is absent")
    if etcd.DATA_DIR in s.exists and s.etcd_active and not ours:
        yield Notice(f"an etcd kubeinit did not install is running: {etcd.DATA_DIR} is left as it is")
    elif etcd.DATA_DIR in s.exists:
        yield _rm([etcd.DATA_DIR], f"remove etcd's data, {etcd.DATA_DIR}")
    else:
        yield Skip(f"{etcd.DATA_DIR} is absent")
    records = [p for p in (ETCD_STAMP, etcd.APPLIED) if p in s.exists]
    if records:
        yield Run(("rm", "-f", "--", *records), note="remove etcd's install stamp and applied record")
    else:
        yield Skip("etcd's install stamp and applied record are absent")

    # manifests, kubelet dir, certificates, kubeconfig files
    if MANIFESTS in s.nonempty:
        yield _empty(MANIFESTS, f"empty {MANIFESTS}")
    else:
        yield Skip(f"{MANIFESTS} is empty or absent")
    if s.int("mounts"):
        yield Run(("sh", "-c", f"awk '$2 ~ \"^{KUBELET_DIR}/\" {{print $2}}' /proc/mounts | sort -r | "
                   "xargs -r -n1 umount"), note=f"unmount what is mounted under {KUBELET_DIR}")
    if KUBELET_DIR in s.nonempty:
        yield _empty(KUBELET_DIR, f"empty {KUBELET_DIR}")
    else:
        yield Skip(f"{KUBELET_DIR} is empty or absent")
    if pki in s.nonempty:
        yield _empty(pki, f"remove the certificates and keys in {pki}")
    else:
        yield Skip(f"{pki} is empty or absent")
    confs = [p for p in kubeconfig_paths(ctx) if p in s.exists]
    if confs:
        yield Run(("rm", "-f", "--", *confs), note=f"remove the kubeconfig files in {ctx.kubeconfig_dir}")
    else:
        yield Skip(f"no kubeconfig files in {ctx.kubeconfig_dir}")

    # what kubeadm reset leaves, and says so
    yield Notice("kept: the container runtime (containerd, runc, the CNI plugins, crictl) and the etcd binaries")
    if CNI_CONF in s.nonempty:
        yield Notice(f"the CNI configuration in {CNI_CONF} is not removed; remove it yourself if you want it gone")
    yield Notice("iptables, nftables and IPVS rules are not reset; clean them yourself if needed "
                 "(e.g. `iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X`, `ipvsadm --clear`)")
    yield Notice("$HOME/.kube/config files are not removed; remove the ones that point at this cluster")
