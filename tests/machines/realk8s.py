"""Real Kubernetes for the machine tests: the binaries in $KUBEINIT_REAL_K8S (kube-apiserver,
kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl; e.g. v1.20.2 built by
shared/tools/build-real-k8s.sh, or any release's kubernetes/server/bin) served the way a site
without Internet would serve them to kubeinit:

- a mirror laid out like upstream: the base test mirror (mirror.py: containerd, runc, CNI,
  etcd), plus the real kubelet, kubectl and kube-proxy at dl.k8s.io/release/v<version>/...;
- an image bundle: OCI tars named exactly as kubeinit's manifests and containerd's sandbox
  image name them (registry.k8s.io/kube-apiserver:<kubernetesVersion>, registry.k8s.io/pause:3.10),
  each one layer holding the real static binary in /usr/local/bin with its entrypoint set; the
  pause image is a tiny static C program. kube-proxy's image also holds what it execs in iptables
  mode: the machines' own iptables (Debian's xtables-nft-multi, the nft backend their `iptables`
  is, so both program one ruleset), its extensions and libraries, taken from the machine rootfs.
  The busybox test image (testimage.py) is in the bundle too, so every host has it. The test
  cluster names a supported kubernetesVersion (STANDS_FOR) and these binaries stand in for it;
- for an upgrade (manifest.json's "upgrade"), the same binaries standing in for UPGRADE_TO: the
  control plane's and kube-proxy's images tagged UPGRADE_TO (the same layers, in tarballs of their
  own, so the upgrade imports them), and a kubelet and kubectl at dl.k8s.io/release/UPGRADE_TO/...
  whose sha256 differs (the same ELF with a note appended, which an ELF loader ignores), so
  kubeinit installs them and restarts the kubelet as it would on a real upgrade.

Built once per set of binaries into the test cache (`realmirror-<key>`; about 20 s).

    KUBEINIT_REAL_K8S=/var/cache/kubeinit-tests/k8s-1.20.2/bin python tests/machines/realk8s.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import testimage
from image import build_rootfs, cache_dir, locked, log
from mirror import deb_arch, sha256
from testimage import binary_layer, busybox_image, write_oci

ENV = "KUBEINIT_REAL_K8S"
STANDS_FOR = "v1.31.4"  # the kubernetesVersion the test clusters name (1.20 lacks the v1.32+ probes' /livez)
UPGRADE_TO = "v1.31.5"  # what an upgrade test goes to: a patch, as a minor (1.32) would probe /livez too
REGISTRY = "registry.k8s.io"
PAUSE_REF = f"{REGISTRY}/pause:3.10"  # kubeadm's sandbox image, as kubeinit configures containerd
SERVED = ("kubelet", "kubectl", "kube-proxy")  # where the release's binaries go
UPGRADED = ("kubelet", "kubectl")  # served again for UPGRADE_TO, with other digests
# Appended to the UPGRADE_TO kubelet and kubectl: other bytes, the same program
UPGRADE_NOTE = f"\n# kubeinit test mirror: this binary stands in for {UPGRADE_TO}\n".encode()
IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")  # static pods' images
PROXY = "kube-proxy"  # the DaemonSet's image: the binary plus iptables
XTABLES = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")
LAYOUT = 3  # bump when the layout changes

# The sandbox's process: sleeps until told to stop, reaps children (as the upstream pause does).
PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction a = {0};
  a.sa_handler = stop; sigaction(SIGINT, &a, 0); sigaction(SIGTERM, &a, 0);
  a.sa_handler = reap; a.sa_flags = SA_NOCLDSTOP; sigaction(SIGCHLD, &a, 0);
  for (;;) pause();
}
"""


def binaries() -> Path | None:
    d = os.environ.get(ENV)
    return Path(d) if d else None


def skip_reason() -> str | None:
    """Why the real-Kubernetes tests cannot run here (None if they can): pytest skips with it."""
    d = binaries()
    if d is None:
        return (
            f"{ENV} is not set: point it at a directory of real Kubernetes binaries (kubelet, kube-apiserver, "
            "...; shared/tools/build-real-k8s.sh builds them)"
        )
    missing = [b for b in (*SERVED, *IMAGES, PROXY) if not os.access(d / b, os.X_OK)]
    if missing:
        return f"{ENV}={d} lacks {', '.join(missing)}"
    if shutil.which("gcc") is None:
        return "gcc is needed to build the pause image (apt-get install gcc)"
    return None


def version(d: Path) -> str:
    out = subprocess.run([str(d / "kubelet"), "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"v(\d+\.\d+\.\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read the kubelet's version from {out!r}")
    return m.group(1)


def build(base: Path, cache: Path | None = None, rootfs: Path | None = None) -> Path:
    """The mirror root (holding manifest.json) over the base mirror `base`, kube-proxy's iptables
    from the machine rootfs `rootfs`; cached by its inputs."""
    cache = cache or cache_dir()
    rootfs = rootfs or build_rootfs(cache)
    d = binaries()
    stats = [(b, (d / b).stat().st_size, (d / b).stat().st_mtime_ns) for b in (*SERVED, *IMAGES, PROXY)]
    busybox = busybox_image(cache)[0]
    inputs = [LAYOUT, str(d), stats, str(base), STANDS_FOR, UPGRADE_TO, PAUSE_C, str(rootfs), str(busybox)]
    key = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]
    root = cache / f"realmirror-{key}"
    with locked(cache / ".realmirror.lock"):
        if (root / "manifest.json").exists():
            return root
        t0 = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".realmirror-"))
        tmp.chmod(0o755)
        try:
            _layout(tmp, base, d, rootfs, busybox)
            tmp.rename(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in cache.glob("realmirror-*"):
            if old != root:
                shutil.rmtree(old, ignore_errors=True)
        log(f"real-Kubernetes mirror and image bundle built in {time.monotonic() - t0:.1f}s at {root}")
    return root


def _inside(rootfs: Path, rel: str) -> Path:
    """The file `rel` names in the rootfs, its symlinks followed inside the rootfs (they are absolute there)."""
    p = rootfs / rel
    for _ in range(40):
        if not p.is_symlink():
            return p
        target = os.readlink(p)
        p = rootfs / target.lstrip("/") if target.startswith("/") else p.parent / target
    raise RuntimeError(f"symlink loop at {rel} in {rootfs}")


def _needed(elf: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def iptables_files(rootfs: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The machines' iptables for kube-proxy's image, from their rootfs: (files, symlinks) by path in
    the image. xtables-nft-multi (each XTABLES name a link to it), its extensions (dlopened), every
    library they need, the loader, and /etc/protocols; lib, lib64 and sbin link into usr as there."""
    (ext,) = rootfs.glob("usr/lib/*-linux-gnu/xtables")
    libdir = str(ext.parent.relative_to(rootfs))
    multi = "usr/sbin/xtables-nft-multi"
    files = {multi: _inside(rootfs, multi), "etc/protocols": _inside(rootfs, "etc/protocols")}
    files |= {f"{libdir}/xtables/{so.name}": so for so in sorted(ext.glob("*.so"))}
    todo = [files[multi], *(files[k] for k in files if "/xtables/" in k)]
    while todo:
        for soname in _needed(todo.pop()):
            rel = f"{libdir}/{soname}"
            if rel not in files:
                files[rel] = _inside(rootfs, rel)
                todo.append(files[rel])
    interp = subprocess.run(["readelf", "-l", str(files[multi])], capture_output=True, text=True, check=True).stdout
    (loader,) = re.findall(r"program interpreter: /(\S+)\]", interp)
    files[f"usr/{loader}" if not loader.startswith("usr/") else loader] = _inside(rootfs, loader)
    links = {f"usr/sbin/{t}": "xtables-nft-multi" for t in XTABLES}
    links |= {top: f"usr/{top}" for top in ("lib", "lib64", "sbin") if (rootfs / top).is_symlink()}
    return files, links


def _layout(root: Path, base: Path, d: Path, rootfs: Path, busybox: Path) -> None:
    arch, ver = deb_arch(), version(d)
    # The base mirror's trees, as they are (symlinks: the HTTP server follows them).
    (root / "dl.k8s.io/release").mkdir(parents=True)
    (root / "github.com").symlink_to(base / "github.com")
    for v in (base / "dl.k8s.io/release").iterdir():
        if v.name not in (f"v{ver}", UPGRADE_TO):
            (root / "dl.k8s.io/release" / v.name).symlink_to(v)
    files = {b: _serve(root, f"v{ver}", arch, b, d / b) for b in SERVED}
    upgrade_files = {b: _serve(root, UPGRADE_TO, arch, b, d / b, UPGRADE_NOTE) for b in UPGRADED}
    images, upgrade_images = [], []
    (root / "images").mkdir()
    with tempfile.TemporaryDirectory() as work:
        pause = Path(work) / "pause"
        src = pause.with_suffix(".c")
        src.write_text(PAUSE_C)
        subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(pause), str(src)], check=True)
        xtables, links = iptables_files(rootfs)
        # (repository, tags, files, symlinks, entrypoint); a tag of UPGRADE_TO goes to the upgrade's list
        todo = [(PAUSE_REF, [""], {"pause": pause}, {}, ["/pause"])] + [
            (f"{REGISTRY}/{b}", [STANDS_FOR, UPGRADE_TO], {f"usr/local/bin/{b}": d / b}, {}, [f"/usr/local/bin/{b}"])
            for b in IMAGES
        ]
        todo.append(
            (
                f"{REGISTRY}/{PROXY}",
                [STANDS_FOR, UPGRADE_TO],
                {f"usr/local/bin/{PROXY}": d / PROXY, **xtables},
                links,
                [f"/usr/local/bin/{PROXY}"],
            )
        )
        for repo, tags, content, symlinks, entrypoint in todo:
            layer = binary_layer(content, symlinks)
            for tag in tags:
                ref = f"{repo}:{tag}" if tag else repo
                out = root / "images" / (ref.rsplit("/", 1)[1].replace(":", "_") + ".tar")
                write_oci(
                    out,
                    layer,
                    arch,
                    ref,
                    {"Env": ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Entrypoint": entrypoint},
                    compresslevel=1,
                )
                entry = {"name": ref, "path": str(out.relative_to(root)), "sha256": sha256(out)}
                (upgrade_images if tag == UPGRADE_TO else images).append(entry)
    ref = testimage.REF
    out = root / "images" / (ref.rsplit("/", 1)[1].replace(":", "_") + ".tar")
    shutil.copyfile(busybox, out)
    images.append({"name": ref, "path": str(out.relative_to(root)), "sha256": sha256(out)})
    manifest = {
        "layout": LAYOUT,
        "arch": arch,
        "version": ver,
        "stands_for": STANDS_FOR,
        "binaries": str(d),
        "files": files,
        "images": images,
        # what an upgrade to UPGRADE_TO takes instead of the files and the STANDS_FOR images
        "upgrade": {"stands_for": UPGRADE_TO, "files": upgrade_files, "images": upgrade_images},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")  # last: marks it complete


def _serve(root: Path, release: str, arch: str, name: str, src: Path, note: bytes = b"") -> dict[str, str]:
    """`src` served as the release's binary `name` (with `note` appended), with its bare-hex
    .sha256 as upstream publishes it: {path, sha256}."""
    bindir = root / f"dl.k8s.io/release/{release}/bin/linux/{arch}"
    bindir.mkdir(parents=True, exist_ok=True)
    dst = bindir / name
    if note:
        shutil.copyfile(src, dst)
        with dst.open("ab") as f:
            f.write(note)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    dst.chmod(0o755)
    digest = sha256(dst)
    (bindir / f"{name}.sha256").write_text(digest)
    return {"path": str(dst.relative_to(root)), "sha256": digest}


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


if __name__ == "__main__":
    from mirror import build_mirror

    if why := skip_reason():
        sys.exit(why)
    r = build(build_mirror()[0])
    print(r)
    print(json.dumps(manifest(r), indent=2))
