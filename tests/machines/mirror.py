"""A local artifact mirror laid out like the upstream release sites, built from Debian packages.

kubeinit downloads release binaries from their upstream URLs; the machine tests point it at
this mirror instead (`<mirror>/<upstream host>/<upstream path>`), so the download, checksum
and install code paths are the real ones while no packet leaves the test bridge.
The binaries are Debian bookworm's builds repacked in upstream's archive layout; they link
against bookworm's libraries (runc needs libseccomp2), which the test machines have.
Tarballs are written reproducibly (fixed mtimes and owners), so a rebuild keeps the checksums.

    python tests/machines/mirror.py          # build (or find) the mirror; prints root and versions
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image import cache_dir, locked, log, run  # noqa: E402

KUBELET_DOUBLE = Path(__file__).resolve().parent / "doubles" / "kubelet.sh"
LAYOUT_VERSION = 2  # bump when the layout below changes, so cached mirrors are rebuilt
DEBS = ["containerd", "runc", "containernetworking-plugins", "etcd-server", "etcd-client"]
MISSING = {"crictl": "no Debian package (cri-tools is not in bookworm)"}


def upstream_version(debver: str) -> str:
    """'1:1.6.20~ds1-1+deb12u3' -> '1.6.20'; '1.20.5+really1.20.2-1' -> '1.20.2'."""
    v = debver.split(":", 1)[-1]
    v = v.split("+really", 1)[-1]
    return re.split(r"[~+-]", v, maxsplit=1)[0]


def deb_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, text=True, capture_output=True).stdout.strip()


def apt_candidates(pkgs: list[str]) -> dict[str, str]:
    def query() -> dict[str, str]:
        out = subprocess.run(
            ["apt-cache", "policy", *pkgs], text=True, capture_output=True, env=dict(os.environ, LC_ALL="C")
        ).stdout
        found, pkg = {}, None
        for line in out.splitlines():
            if not line.startswith(" "):
                pkg = line.rstrip(":")
            elif line.strip().startswith("Candidate:") and "(none)" not in line:
                found[pkg] = line.split(":", 1)[1].strip()
        return found

    found = query()
    if set(found) != set(pkgs):  # a fresh machine may have no package lists yet
        run(["apt-get", "update"], stdout=subprocess.DEVNULL)
        found = query()
    if missing := set(pkgs) - set(found):
        raise RuntimeError(f"apt has no candidate for {sorted(missing)}")
    return found


def apt_download(pkgs: list[str], dest: Path) -> dict[str, Path]:
    """The candidate .deb of each package, downloaded into `dest` unless already there."""
    dest.mkdir(parents=True, exist_ok=True)
    want = apt_candidates(pkgs)

    def present() -> dict[str, Path]:
        have = {}
        for f in dest.glob("*.deb"):
            name, ver, _ = urllib.parse.unquote(f.name).split("_")
            if want.get(name) == ver:
                have[name] = f
        return have

    if missing := [p for p in pkgs if p not in present()]:
        log(f"apt-get download {' '.join(missing)}")
        # Sandbox user root: _apt cannot write into a root-owned cache dir.
        run(
            ["apt-get", "download", "-o", "APT::Sandbox::User=root", *(f"{p}={want[p]}" for p in missing)],
            cwd=dest,
            stdout=subprocess.DEVNULL,
        )
    return present()


def _kubectl_version(binary: Path) -> str | None:
    r = subprocess.run([str(binary), "version", "--client", "-o", "json"], text=True, capture_output=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["clientVersion"]["gitVersion"]


def find_kubectl(debs_dir: Path) -> tuple[Path, str, str]:
    """(binary, version, where it came from). Prefers the host's kubectl when it is a real
    release build; the Google Cloud SDK installs a *dispatcher* as /usr/bin/kubectl whose real
    per-version builds sit next to it as kubectl.1.NN, so take the one matching its minor.
    Falls back to Debian's kubernetes-client (1.20, old but real)."""
    override = os.environ.get("KUBEINIT_TEST_KUBECTL")
    candidates = [Path(override)] if override else []
    if host := shutil.which("kubectl"):
        real = Path(host).resolve()
        ver = _kubectl_version(real) or ""
        if m := re.fullmatch(r"v(\d+)\.(\d+)\.\d+-dispatcher", ver):
            candidates.append(real.with_name(f"kubectl.{m[1]}.{m[2]}"))
        candidates.append(real)
    for c in candidates:
        if c.is_file() and (v := _kubectl_version(c)) and re.fullmatch(r"v\d+\.\d+\.\d+", v):
            return c, v[1:], f"host {c}"
    deb = apt_download(["kubernetes-client"], debs_dir)["kubernetes-client"]
    x = debs_dir / f"{deb.stem}.x"  # extracted once: its mtime is part of the mirror's key
    if not x.is_dir():
        run(["dpkg-deb", "-x", str(deb), str(x.with_suffix(".tmp"))])
        x.with_suffix(".tmp").rename(x)
    return x / "usr/bin/kubectl", upstream_version(deb.name.split("_")[1]), f"Debian {deb.name}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _tar_gz(out: Path, members: list[tuple[str, Path | None]]) -> None:
    """Reproducible tar.gz: (name, file) entries, file None = directory; root owned, mtime 0."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(out, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name, src in members:
            ti = tarfile.TarInfo(name)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mtime = 0
            if src is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            else:
                ti.size, ti.mode = src.stat().st_size, 0o755
                with open(src, "rb") as f:
                    tar.addfile(ti, f)


def build_mirror(cache: Path | None = None) -> tuple[Path, dict[str, str]]:
    """Return (mirror root, versions) where versions also holds "arch". Cached by its inputs
    (the .deb files and the kubectl binary), so a second call costs only the apt-cache query."""
    cache = cache or cache_dir()
    with locked(cache / ".mirror.lock"):  # also guards the shared .deb download dir
        return _build_mirror(cache)


def _build_mirror(cache: Path) -> tuple[Path, dict[str, str]]:
    debs = apt_download(DEBS, cache / "debs")
    kubectl, kubectl_ver, kubectl_src = find_kubectl(cache / "debs")
    arch = deb_arch()
    st = kubectl.stat()
    key = hashlib.sha256(
        json.dumps(
            [
                LAYOUT_VERSION,
                arch,
                sorted(p.name for p in debs.values()),
                str(kubectl),
                st.st_size,
                st.st_mtime_ns,
                sha256(KUBELET_DOUBLE),
            ]
        ).encode()
    ).hexdigest()[:16]
    root = cache / f"mirror-{key}"
    if (root / "manifest.json").exists():
        return root, json.loads((root / "manifest.json").read_text())["versions"]
    t0 = time.monotonic()
    shutil.rmtree(root, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=cache) as x:
        x = Path(x)
        for deb in debs.values():
            run(["dpkg-deb", "-x", str(deb), str(x)])
        versions = {"arch": arch, "kubectl": kubectl_ver}
        for name, pkg in (
            ("containerd", "containerd"),
            ("runc", "runc"),
            ("cni_plugins", "containernetworking-plugins"),
            ("etcd", "etcd-server"),
        ):
            versions[name] = upstream_version(urllib.parse.unquote(debs[pkg].name).split("_")[1])
        files = _layout(root, x, versions, kubectl)
    manifest = {
        "layout": LAYOUT_VERSION,
        "arch": arch,
        "versions": versions,
        "files": {k: {"path": str(p.relative_to(root)), "sha256": sha256(p)} for k, p in files.items()},
        "sources": {
            **{p: d.name for p, d in debs.items()},
            "kubectl": kubectl_src,
            "kubelet": f"TEST DOUBLE {KUBELET_DOUBLE.relative_to(KUBELET_DOUBLE.parents[2])}",
        },
        "missing": MISSING,
    }
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.rename(root / "manifest.json")  # written last: marks the mirror complete
    log(f"mirror built in {time.monotonic() - t0:.1f}s at {root}")
    for old in cache.glob("mirror-*"):
        if old != root:
            shutil.rmtree(old, ignore_errors=True)
    return root, versions


def _layout(root: Path, x: Path, v: dict[str, str], kubectl: Path) -> dict[str, Path]:
    """Write the upstream-shaped files from the extracted tree `x`; return the main artifacts."""
    arch, gh = v["arch"], root / "github.com"

    def checksum_file(path: Path, for_files: list[Path], bare: bool = False) -> None:
        lines = [sha256(f) if bare else f"{sha256(f)}  {f.name}\n" for f in for_files]
        path.write_text("".join(lines))

    d = gh / f"containerd/containerd/releases/download/v{v['containerd']}"
    containerd = d / f"containerd-{v['containerd']}-linux-{arch}.tar.gz"
    _tar_gz(
        containerd,
        [("bin/", None)]
        + [
            (f"bin/{b}", x / "usr/bin" / b)
            for b in ("containerd", "containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2", "ctr")
        ],
    )
    checksum_file(containerd.with_name(containerd.name + ".sha256sum"), [containerd])

    d = gh / f"opencontainers/runc/releases/download/v{v['runc']}"
    d.mkdir(parents=True, exist_ok=True)
    runc = d / f"runc.{arch}"
    shutil.copyfile(x / "usr/sbin/runc", runc)
    runc.chmod(0o755)
    checksum_file(d / "runc.sha256sum", [runc])

    d = gh / f"containernetworking/plugins/releases/download/v{v['cni_plugins']}"
    cni = d / f"cni-plugins-linux-{arch}-v{v['cni_plugins']}.tgz"
    plugins = sorted((x / "usr/lib/cni").iterdir())
    _tar_gz(cni, [("./", None)] + [(f"./{p.name}", p) for p in plugins])
    checksum_file(cni.with_name(cni.name + ".sha256"), [cni])

    d = gh / f"etcd-io/etcd/releases/download/v{v['etcd']}"
    top = f"etcd-v{v['etcd']}-linux-{arch}"
    etcd = d / f"{top}.tar.gz"
    _tar_gz(etcd, [(f"{top}/", None), (f"{top}/etcd", x / "usr/bin/etcd"), (f"{top}/etcdctl", x / "usr/bin/etcdctl")])
    checksum_file(d / "SHA256SUMS", [etcd])

    d = root / f"dl.k8s.io/release/v{v['kubectl']}/bin/linux/{arch}"
    d.mkdir(parents=True, exist_ok=True)
    kc = d / "kubectl"
    shutil.copyfile(kubectl, kc)
    kc.chmod(0o755)
    checksum_file(d / "kubectl.sha256", [kc], bare=True)  # upstream: bare hex, no newline
    # No kubelet build exists here: the kubelet test double stands in for it (see its header).
    kl = d / "kubelet"
    kl.write_text(KUBELET_DOUBLE.read_text().replace("@VERSION@", v["kubectl"]))
    kl.chmod(0o755)
    checksum_file(d / "kubelet.sha256", [kl], bare=True)
    return {"containerd": containerd, "runc": runc, "cni_plugins": cni, "etcd": etcd, "kubectl": kc, "kubelet": kl}


# The spec's artifact name -> the manifest's key (and the versions' key: the kubelet test double
# carries kubectl's version).
PIN_KEYS = {
    "containerd": "containerd",
    "runc": "runc",
    "cni-plugins": "cni_plugins",
    "etcd": "etcd",
    "kubectl": "kubectl",
    "kubelet": "kubelet",
}


def pins(root: Path | None = None) -> dict[str, str]:
    """sha256 of each artifact this mirror serves, by the spec's name. Its builds are Debian's (and a
    test double), not upstream's: kubeinit's checksum table rightly knows none of them, so the test
    cluster files pin these, as a site with its own builds would."""
    root = root or build_mirror()[0]
    files = json.loads((root / "manifest.json").read_text())["files"]
    return {name: files[key]["sha256"] for name, key in PIN_KEYS.items() if key in files}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


class MirrorServer:
    """An http.server on its own thread; `.url` is the base URL, `.stop()` shuts it down."""

    def __init__(self, root: Path, bind_ip: str, port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer((bind_ip, port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{bind_ip}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="mirror", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def serve_mirror(root: Path, bind_ip: str, port: int = 0) -> MirrorServer:
    """Serve `root` on bind_ip only (the bridge address, never 0.0.0.0); port 0 = any free."""
    return MirrorServer(root, bind_ip, port)


if __name__ == "__main__":
    t0 = time.monotonic()
    r, ver = build_mirror()
    print(r)
    print(json.dumps(ver))
    log(f"done in {time.monotonic() - t0:.2f}s")
