"""Real Kubernetes for the machine tests: the binaries in $KUBEINIT_REAL_K8S (kube-apiserver,
kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl; e.g. v1.20.2 built by
shared/tools/build-real-k8s.sh, or any release's kubernetes/server/bin) served the way a site
without Internet would serve them to kubeinit:

- a mirror laid out like upstream: the base test mirror (mirror.py: containerd, runc, CNI,
  etcd), plus the real kubelet, kubectl and kube-proxy at dl.k8s.io/release/v<version>/...;
- an image bundle: OCI tars named exactly as kubeinit's manifests and containerd's sandbox
  image name them (registry.k8s.io/kube-apiserver:<kubernetesVersion>, registry.k8s.io/pause:3.10),
  each one layer holding the real static binary in /usr/local/bin with its entrypoint set; the
  pause image is a tiny static C program. The test cluster names a supported kubernetesVersion
  (STANDS_FOR) and these binaries stand in for it.

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
from image import cache_dir, locked, log
from mirror import deb_arch, sha256
from testimage import binary_layer, write_oci

ENV = "KUBEINIT_REAL_K8S"
STANDS_FOR = "v1.31.4"  # the kubernetesVersion the test clusters name (1.20 lacks the v1.32+ probes' /livez)
REGISTRY = "registry.k8s.io"
PAUSE_REF = f"{REGISTRY}/pause:3.10"  # kubeadm's sandbox image, as kubeinit configures containerd
SERVED = ("kubelet", "kubectl", "kube-proxy")  # where the release's binaries go
IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")  # static pods' images
LAYOUT = 1  # bump when the layout changes

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
    missing = [b for b in (*SERVED, *IMAGES) if not os.access(d / b, os.X_OK)]
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


def build(base: Path, cache: Path | None = None) -> Path:
    """The mirror root (holding manifest.json) over the base mirror `base`; cached by its inputs."""
    cache = cache or cache_dir()
    d = binaries()
    stats = [(b, (d / b).stat().st_size, (d / b).stat().st_mtime_ns) for b in (*SERVED, *IMAGES)]
    key = hashlib.sha256(json.dumps([LAYOUT, str(d), stats, str(base), STANDS_FOR, PAUSE_C]).encode()).hexdigest()[:16]
    root = cache / f"realmirror-{key}"
    with locked(cache / ".realmirror.lock"):
        if (root / "manifest.json").exists():
            return root
        t0 = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".realmirror-"))
        tmp.chmod(0o755)
        try:
            _layout(tmp, base, d)
            tmp.rename(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in cache.glob("realmirror-*"):
            if old != root:
                shutil.rmtree(old, ignore_errors=True)
        log(f"real-Kubernetes mirror and image bundle built in {time.monotonic() - t0:.1f}s at {root}")
    return root


def _layout(root: Path, base: Path, d: Path) -> None:
    arch, ver = deb_arch(), version(d)
    # The base mirror's trees, as they are (symlinks: the HTTP server follows them).
    (root / "dl.k8s.io/release").mkdir(parents=True)
    (root / "github.com").symlink_to(base / "github.com")
    for v in (base / "dl.k8s.io/release").iterdir():
        if v.name != f"v{ver}":
            (root / "dl.k8s.io/release" / v.name).symlink_to(v)
    files = {}
    bindir = root / f"dl.k8s.io/release/v{ver}/bin/linux/{arch}"
    bindir.mkdir(parents=True)
    for b in SERVED:
        dst = bindir / b
        try:
            os.link(d / b, dst)
        except OSError:
            shutil.copyfile(d / b, dst)
        dst.chmod(0o755)
        digest = sha256(dst)
        (bindir / f"{b}.sha256").write_text(digest)  # upstream: bare hex
        files[b] = {"path": str(dst.relative_to(root)), "sha256": digest}
    images = []
    (root / "images").mkdir()
    with tempfile.TemporaryDirectory() as work:
        pause = Path(work) / "pause"
        src = pause.with_suffix(".c")
        src.write_text(PAUSE_C)
        subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(pause), str(src)], check=True)
        todo = [(PAUSE_REF, {"pause": pause}, ["/pause"])] + [
            (f"{REGISTRY}/{b}:{STANDS_FOR}", {f"usr/local/bin/{b}": d / b}, [f"/usr/local/bin/{b}"]) for b in IMAGES
        ]
        for ref, content, entrypoint in todo:
            out = root / "images" / (ref.rsplit("/", 1)[1].replace(":", "_") + ".tar")
            write_oci(
                out,
                binary_layer(content),
                arch,
                ref,
                {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Entrypoint": entrypoint},
                compresslevel=1,
            )
            images.append({"name": ref, "path": str(out.relative_to(root)), "sha256": sha256(out)})
    manifest = {
        "layout": LAYOUT,
        "arch": arch,
        "version": ver,
        "stands_for": STANDS_FOR,
        "binaries": str(d),
        "files": files,
        "images": images,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")  # last: marks it complete


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


if __name__ == "__main__":
    from mirror import build_mirror

    if why := skip_reason():
        sys.exit(why)
    r = build(build_mirror()[0])
    print(r)
    print(json.dumps(manifest(r), indent=2))
