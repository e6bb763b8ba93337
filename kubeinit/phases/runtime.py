"""runtime: containerd, runc, the CNI plugins and crictl from their release binaries,
containerd's config and unit, the kernel modules and sysctls Kubernetes needs.

The plan, per host, and why it has this shape:
1. Downloads first (Local steps, where kubeinit runs): a wrong checksum stops the run
   before any host was touched.
2. Archives go to the host as they are, compressed (about half the bytes of the files
   inside), into a staging dir, and one command extracts and installs them: two round
   trips per component however many files it holds (kubeinit/hostops/install.py, shared
   with etcd). Each file is installed by rename (a running containerd keeps its old
   inode), and a stamp listing every installed file's fingerprint is written last, so a
   killed run is redone rather than trusted.
3. Config files through ensure_file: skipped when digest and mode already match.
4. containerd is restarted only when its binary, config or unit changed - or changed
   in an earlier run that was killed before the restart: APPLIED records what containerd
   was last (re)started with.

Facts cost one round trip, gathered with preflight's (see apply.py): the shared facts
(kubeinit/facts/host.py: arch, containerd's unit state, sysctls, the stamps with the installed
files' fingerprints, stale temp files), the kernel modules (facts/node.py), the registry mirrors
kubeinit wrote (facts/containerd.py) and the digests of the few files compared by content
(config files, staged archives).
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeinit import artifacts
from kubeinit.context import Context, Target, ensure_file
from kubeinit.facts import Fact, files
from kubeinit.facts.containerd import KubeinitMirrors
from kubeinit.facts.host import Arch, Commands, Leftovers, Stamps, Sysctl, UnitState
from kubeinit.facts.node import KernelModules, Modules
from kubeinit.hostops import install
from kubeinit.hostops.install import (  # noqa: F401
    ARCH,
    INSTALL_SCRIPT,
    INSTALLER,
    STAGING,
    STAMPS,
    STATE,
    Stamp,
)
from kubeinit.phases import PhaseImpl
from kubeinit.render import render
from kubeinit.steps import Notice, Run, Skip, Step, Upload

BIN = "/usr/local/bin"
CONTAINERD = f"{BIN}/containerd"
RUNC = "/usr/local/sbin/runc"
CNI_BIN = "/opt/cni/bin"
CNI_CONF = "/etc/cni/net.d"
CONFIG = "/etc/containerd/config.toml"
CERTS_D = "/etc/containerd/certs.d"  # containerd's per-registry hosts.toml (registry mirrors)
MIRROR_HEADER = "# Written by kubeinit from runtime.containerd.registryMirrors"
UNIT = "/etc/systemd/system/containerd.service"
CRICTL_YAML = "/etc/crictl.yaml"
SYSCTL_CONF = "/etc/sysctl.d/99-kubeinit.conf"
MODULES_CONF = "/etc/modules-load.d/kubeinit.conf"
APPLIED = f"{STATE}/containerd.applied"
SOCKET = "/run/containerd/containerd.sock"
PAUSE = "pause:3.10"  # kubeadm's sandbox image for the supported Kubernetes minors

COMPONENTS = ("containerd", "runc", "cni-plugins", "crictl")
SYSCTLS = ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")
# archive component -> (its directory inside the archive, where those files go)
PLANNED = "runtime-planned"  # ctx.shared: (host, component) this run installs, for the phases after it
ARCHIVES = {"containerd": ("bin", BIN), "cni-plugins": (".", CNI_BIN), "crictl": (".", BIN)}

MIRRORS = KubeinitMirrors(CERTS_D, MIRROR_HEADER)  # others' hosts.toml files are left alone
MODPROBE = Commands(("modprobe",))


# (Re)start containerd on what is on disk now, and record what that was (APPLIED): the
# binary's fingerprint and the config's and unit's sha256.
RESTART = (
    "set -e; systemctl daemon-reload; systemctl enable -q containerd; "
    "systemctl restart containerd || { journalctl -u containerd -n 5 --no-pager -o cat >&2; exit 1; }; "
    + install.write_record(
        APPLIED, f'echo "$(stat -c %s:%.9Y:%i:%.9Z {CONTAINERD})  {CONTAINERD}"; sha256sum {CONFIG} {UNIT}'
    )
)


# The files whose content a plan compares; STAGING/ stands for every file staged there.
COMPARED = [CONFIG, UNIT, CRICTL_YAML, SYSCTL_CONF, MODULES_CONF, APPLIED, INSTALLER, STAGING + "/"]


def preload() -> None:
    from kubeinit import render as r

    r.warm("containerd/config.toml.j2", "containerd/containerd.service.j2", "crictl.yaml.j2")


def facts(ctx: Context, target: Target) -> list[Fact]:
    from kubeinit.phases import (
        images,  # its probe rides here: one round trip for both on a re-run
    )

    return [
        Arch(),
        UnitState("containerd"),
        Stamps(),
        Leftovers(),
        *(Sysctl(k) for k in SYSCTLS),
        KernelModules(),
        MODPROBE,
        MIRRORS,
        *images.probe_command(ctx),
        *files(COMPARED + list(mirror_files(ctx.spec))),
    ]


def config_version(containerd_version: str) -> int:
    """containerd 2.x reads config version 3 (and converts 2); 1.6/1.7 read only version 2."""
    return 3 if int(containerd_version.split(".")[0]) >= 2 else 2


def sandbox_image(spec) -> str:
    return spec.runtime.containerd.sandbox_image or f"{spec.image_repository}/{PAUSE}"


def containerd_config(spec, version: str) -> str:
    """kubeinit's config for this containerd version, with runtime.containerd's typed settings in
    that version's layout and its configPatch merged last (tables key by key, values replaced).
    Always valid TOML: it is read back before it can reach a host."""
    import tomllib

    from kubeinit import tomlw

    c = spec.runtime.containerd
    major, minor = (int(x) for x in version.split(".")[:2])
    text = render(
        "containerd/config.toml.j2",
        containerd_version=version,
        config_version=config_version(version),
        socket=SOCKET,
        sandbox_image=tomlw.string(sandbox_image(spec)),
        runc=RUNC if spec.artifact("runc").enabled else "runc",
        cni_bin_dir=CNI_BIN,
        cni_conf_dir=CNI_CONF,
        cni_bin_dirs=(major, minor) >= (2, 1),
        restrict_oom_score_adj=c.restrict_oom_score_adj,
        registry_config_path=CERTS_D if c.registry_mirrors else "",
    )
    data = tomllib.loads(text)
    if c.config_patch:
        head = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        text = (
            head
            + "# runtime.containerd.configPatch of the cluster file is merged in.\n\n"
            + tomlw.dumps(tomlw.merge(data, tomllib.loads(c.config_patch)))
        )
    return text


def mirror_files(spec) -> dict[str, str]:
    """hosts.toml per mirrored registry (containerd's certs.d layout, read at each pull: no restart)."""
    from kubeinit import tomlw

    out = {}
    for registry, urls in spec.runtime.containerd.registry_mirrors.items():
        hosts = {"host": {u: {"capabilities": ["pull", "resolve"]} for u in urls}}
        out[f"{CERTS_D}/{registry}/hosts.toml"] = (
            f"{MIRROR_HEADER}.{registry}; kubeinit rewrites it on `up`.\n"
            "# Mirrors are tried in this order, then the registry itself.\n\n" + tomlw.dumps(hosts)
        )
    return out


def plan_runtime(ctx: Context, target: Target) -> Iterator[Step]:
    spec, facts = ctx.spec, target.facts
    stamps = facts.get(Stamps())
    arch = install.host_arch(spec, target.name, facts.get(Arch()))
    wanted = [n for n in COMPONENTS if spec.artifact(n).enabled]
    rels = {n: artifacts.release(spec, n, arch) for n in wanted}
    notices: list[Step] = []
    digests = {n: install.expected_sha256(ctx, r, notices) for n, r in rels.items()}  # may read the published sums
    yield from notices
    version = spec.artifact("containerd").version

    facts.prefetch(COMPARED)  # gathered with the probe already, when the executor ran this phase

    todo = [n for n in wanted if not install.installed(stamps.get(n), digests[n])]
    # What containerd would run with now, before this plan changes anything.
    have_containerd = "containerd" in wanted and "containerd" not in todo
    now = {
        CONTAINERD: stamps["containerd"].files.get(CONTAINERD) if have_containerd else None,
        **{path: (f.sha256 if (f := facts.file(path)) else None) for path in (CONFIG, UNIT)},
    }
    restart_pending = install.restart_pending(facts, APPLIED, now)

    # 1. downloads, all before any host is changed
    for n in todo:
        yield from install.download(rels[n], digests[n])
    yield from install.remove_leftovers(facts.get(Leftovers()))  # a killed run's, before anything is staged anew
    # 2. binaries
    if any(n in ARCHIVES for n in todo):
        yield from ensure_file(target, INSTALLER, INSTALL_SCRIPT, 0o755, "kubeinit's archive installer")
    for n in COMPONENTS:
        if n not in wanted:
            yield Skip(f"{n} is left out (artifacts.{n}.enabled: false)")
        elif n not in todo:
            yield Skip(f"{rels[n].label} is installed")
        else:
            yield from _install(rels[n], digests[n], n in ARCHIVES, facts)
            ctx.shared.setdefault(PLANNED, set()).add((target.name, n))
    # 3. kernel, sysctls, config files
    modules = facts.get(KernelModules())
    yield from _modules(target, modules, "modprobe" in facts.get(MODPROBE))
    yield from _sysctls(target, modules, {path: facts.get(Sysctl(path)) for path in SYSCTLS})
    if "containerd" not in wanted:
        return
    changed = False
    files = [
        (CONFIG, containerd_config(spec, version), "containerd config (SystemdCgroup, sandbox image)"),
        (
            UNIT,
            render(
                "containerd/containerd.service.j2", containerd_version=version, containerd=CONTAINERD, config=CONFIG
            ),
            "containerd systemd unit",
        ),
    ]
    if "crictl" in wanted:
        files.append((CRICTL_YAML, render("crictl.yaml.j2", socket=SOCKET), "crictl endpoint"))
    for path, content, note in files:
        for step in ensure_file(target, path, content, 0o644, note):
            changed |= isinstance(step, Upload) and path != CRICTL_YAML
            yield step
    yield from _mirrors(target, spec, facts.get(MIRRORS))
    # 4. the service
    unit = facts.get(UnitState("containerd"))
    if changed or "containerd" in todo or restart_pending:
        yield Run(("sh", "-c", RESTART), note=f"(re)start containerd {version} on its new binary/config")
    elif unit.active != "active" or unit.enabled != "enabled":
        yield Run(("systemctl", "enable", "--now", "containerd"), note="enable and start containerd")
    else:
        yield Skip(f"containerd {version} is enabled and running with this configuration")


def _mirrors(target: Target, spec, ours: frozenset[str]) -> Iterator[Step]:
    """Write the wanted hosts.toml files; remove those of kubeinit's (`ours`) no longer wanted."""
    wanted = mirror_files(spec)
    for path, content in wanted.items():
        yield from ensure_file(target, path, content, 0o644, "registry mirrors")
    stale = sorted(ours - set(wanted))
    if stale:
        dirs = [f.rsplit("/", 1)[0] for f in stale]
        yield Run(
            ("sh", "-c", 'rm -f -- "$@"; for f; do rmdir -- "${f%/*}" 2>/dev/null; done; true', "sh", *stale),
            note=f"remove registry mirrors no longer in the cluster file ({', '.join(d.rsplit('/', 1)[1] for d in dirs)})",  # noqa: E501
        )


def _install(rel: artifacts.Release, digest: str, archive: bool, facts) -> Iterator[Step]:
    if not archive:  # runc: a single binary, uploaded straight into place (atomic, verified)
        yield from install.install_binary(rel, digest, RUNC)
        return
    yield from install.install_archive(rel, digest, *ARCHIVES[rel.name], facts)


def _modules(target: Target, modules: Modules, modprobe: bool) -> Iterator[Step]:
    """overlay (containerd's snapshotter) and br_netfilter (bridged pod traffic through
    iptables), best effort: a kernel may have them built in and no modprobe at all."""
    need = [m for m in ("overlay", "br_netfilter") if m not in modules.present]
    if modprobe:
        yield from ensure_file(target, MODULES_CONF, "overlay\nbr_netfilter\n", 0o644, "load at boot")
        loadable = [m for m in need if m in modules.loadable]
        if loadable:
            yield Run(("modprobe", "-a", *loadable), note="load kernel modules")
        missing = [m for m in need if m not in loadable]
        why = "this kernel has no such module"
    else:
        missing = need
        why = "modprobe is not installed"
    if missing:
        yield Notice(
            f"kernel module {' and '.join(missing)} is not loaded and cannot be ({why}); containers and "
            "pod networking may not work until it is"
        )
    elif not need:
        yield Skip("kernel modules overlay and br_netfilter are available")


def _sysctls(target: Target, modules: Modules, values: dict[str, str]) -> Iterator[Step]:
    """`values`: each of SYSCTLS as it is now."""
    keys = {"net.ipv4.ip_forward": "net/ipv4/ip_forward"}
    if "br_netfilter" in modules.present | modules.loadable:  # its keys appear once it is loaded
        keys |= {
            "net.bridge.bridge-nf-call-iptables": "net/bridge/bridge-nf-call-iptables",
            "net.bridge.bridge-nf-call-ip6tables": "net/bridge/bridge-nf-call-ip6tables",
        }
    text = "# Written by kubeinit: pods need forwarding, and bridged pod traffic must pass iptables.\n" + "".join(
        f"{k} = 1\n" for k in keys
    )
    changed = False
    for step in ensure_file(target, SYSCTL_CONF, text, 0o644, "sysctls for Kubernetes"):
        changed |= isinstance(step, Upload)
        yield step
    if changed or any(values[path] != "1" for path in keys.values()):
        yield Run(("sysctl", "-e", "-p", SYSCTL_CONF), note="apply sysctls")


RUNTIME = PhaseImpl(plan_runtime, facts, preload=preload)
