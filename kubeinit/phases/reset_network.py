"""reset/cleanup-network: what the pod network leaves on a host, which kubeadm reset leaves too
(its users' most common complaint). With `kubeinit reset --clean-network` (or a yes on a
terminal) it is removed; without, the plan names exactly what remains.

    the CNI config          every file in /etc/cni/net.d (kubeinit's bridge conflist, flannel's, calico's)
    kubeinit's routes       the routes tagged proto 147 and kubeinit-pod-network.service with its script
    iptables chains         KUBE-* (kube-proxy, the kubelet's canaries), CNI-* (the CNI plugins),
                            FLANNEL-*, cali-* and KUBEINIT-*, in every table, IPv4 and IPv6: the
                            rules jumping to them go too (iptables-save, filtered, iptables-restore)
    nftables tables         kube-proxy's, the CNI plugins' (cni_plugins_*), flannel's and calico's
    interfaces              cni0, flannel.1, flannel-v6.1, vxlan.calico, vxlan-v6.calico, kube-ipvs0

It runs after cleanup-node, so no kube-proxy or CNI pod is left to write them again. IPVS
virtual servers are named, not cleared (`ipvsadm --clear`: ipvsadm is rarely installed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from kubeinit.connection import Result
from kubeinit.context import Context, Target
from kubeinit.facts import Fact
from kubeinit.phases import PhaseImpl
from kubeinit.phases.cni_bridge import PROTO, SCRIPT, SERVICE, UNIT
from kubeinit.phases.runtime import CNI_CONF
from kubeinit.steps import Notice, Run, Skip, Step

CHAINS = r"(KUBE-|CNI-|FLANNEL-|cali-|KUBEINIT-)"
TABLES = r"^(kube-proxy|cni_plugins_.*|flannel.*|calico.*)$"
LINKS = ("cni0", "flannel.1", "flannel-v6.1", "vxlan.calico", "vxlan-v6.calico", "kube-ipvs0")
# iptables-save lines of those chains: their declarations, their rules and the rules that jump to them
_DROP = f"(^:{CHAINS}|^-A {CHAINS}| -[jg] {CHAINS})"

_PROBE = f"""
for f in {CNI_CONF}/* {CNI_CONF}/.[!.]*; do {{ [ -f "$f" ] || [ -L "$f" ]; }} && echo "conf $f"; done
for p in {UNIT} {SCRIPT}; do [ -e "$p" ] && echo "file $p"; done
ip -o route show proto {PROTO} 2>/dev/null | while read -r dst _ via _; do echo "route $dst via $via"; done
ip -6 -o route show proto {PROTO} 2>/dev/null | while read -r dst _ via _; do echo "route $dst via $via"; done
for t in iptables ip6tables; do
  command -v $t-save >/dev/null 2>&1 && $t-save 2>/dev/null | grep -E '^:{CHAINS}' | cut -d' ' -f1 |
    while read -r c; do echo "chain $t ${{c#:}}"; done
done
command -v nft >/dev/null 2>&1 && nft list tables 2>/dev/null | while read -r _ fam name; do
  echo "$name" | grep -qE '{TABLES}' && echo "nft $fam $name"; done
for l in {" ".join(LINKS)}; do [ -e /sys/class/net/$l ] && echo "link $l"; done
true
"""


@dataclass(frozen=True)
class Leftovers:
    confs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    chains: dict[str, list[str]] = field(default_factory=dict)  # iptables / ip6tables -> chain names
    tables: tuple[str, ...] = ()  # "ip kube-proxy"
    links: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.confs or self.files or self.routes or self.chains or self.tables or self.links)


@dataclass(frozen=True)
class NetworkLeftovers(Fact[Leftovers]):
    def argv(self) -> tuple[str, ...]:
        return ("sh", "-c", _PROBE)

    def parse(self, r: Result) -> Leftovers:
        found: dict[str, list[str]] = {k: [] for k in ("conf", "file", "route", "nft", "link")}
        chains: dict[str, list[str]] = {}
        for line in r.out.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "chain":
                tool, _, chain = rest.partition(" ")
                chains.setdefault(tool, []).append(chain)
            elif kind in found and rest:
                found[kind].append(rest)
        return Leftovers(
            tuple(found["conf"]),
            tuple(found["file"]),
            tuple(found["route"]),
            chains,
            tuple(found["nft"]),
            tuple(found["link"]),
        )


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [NetworkLeftovers()]


def _chains(left: Leftovers) -> str:
    out = []
    for tool, names in sorted(left.chains.items()):
        prefixes = sorted({n.split("-", 1)[0] + "-*" for n in names})
        out.append(f"{len(names)} {tool} chains ({', '.join(prefixes)})")
    return ", ".join(out)


def described(left: Leftovers) -> list[str]:
    """What remains, in words."""
    out = []
    if left.confs:
        out.append(f"the CNI config {', '.join(left.confs)}")
    if left.routes:
        out.append(f"kubeinit's routes {', '.join(left.routes)}")
    if left.files:
        out.append(", ".join(left.files))
    if left.chains:
        out.append(_chains(left))
    if left.tables:
        out.append(f"the nftables tables {', '.join(left.tables)}")
    if left.links:
        out.append(f"the interfaces {', '.join(left.links)}")
    return out


def plan(ctx: Context, target: Target, clean: bool = False) -> Iterator[Step]:
    left = target.facts.get(NetworkLeftovers())
    if not left:
        yield Skip("no pod network config, routes, iptables chains or nftables tables of Kubernetes' here")
        return
    if not clean:
        yield Notice(
            "left as they are: " + "; ".join(described(left)) + ". `kubeinit reset --clean-network` removes them"
        )
        return
    if left.files:
        yield Run(
            (
                "sh",
                "-c",
                f"systemctl disable --now -q {SERVICE} 2>/dev/null; rm -f {UNIT} {SCRIPT}; systemctl daemon-reload",
            ),
            note=f"remove {SERVICE} and its script",
        )
    if left.routes:
        yield Run(
            ("sh", "-c", f"ip route flush proto {PROTO}; ip -6 route flush proto {PROTO}; true"),
            note=f"remove kubeinit's routes: {', '.join(left.routes)}",
        )
    if left.confs:
        yield Run(("rm", "-f", "--", *left.confs), note=f"remove the CNI config in {CNI_CONF}")
    for tool in sorted(left.chains):
        yield Run(
            ("sh", "-c", f"s=$({tool}-save) && printf '%s\\n' \"$s\" | grep -vE '{_DROP}' | {tool}-restore -w 5"),
            note=f"remove {len(left.chains[tool])} {tool} chains of kube-proxy and the CNI plugins, and the rules "
            "that jump to them",
        )
    for table in left.tables:
        yield Run(("nft", "delete", "table", *table.split()), note=f"remove the nftables table {table}")
    for link in left.links:
        yield Run(("ip", "link", "delete", link), note=f"remove the interface {link}")
    yield Notice("IPVS virtual servers, if kube-proxy ran in ipvs mode, are left: `ipvsadm --clear` removes them")


def cleanup_network(clean: bool) -> PhaseImpl:
    """The phase, removing (clean) or naming what it finds."""
    return PhaseImpl(lambda ctx, target: plan(ctx, target, clean), facts)
