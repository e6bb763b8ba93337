"""Release artifacts: where they live upstream, their sha256, and a local cache.

Every binary kubeinit installs is downloaded once, where kubeinit runs, into
`$KUBEINIT_HOME/cache` (default ~/.kubeinit/cache), verified, and only then moved
into the cache: whatever is in the cache has been checked. Hosts get it from there
(uploaded), so a cluster of N hosts costs one download, and the hosts need no
Internet access. `artifacts.mirror` (a URL or a directory laid out as
`<mirror>/<upstream host>/<upstream path>`) replaces the upstream sites for
air-gapped sites.

The expected digest is the spec's pinned `sha256` when given, else the one in kubeinit's own
checksum table (kubeinit/data/checksums.json, written by scripts/update_checksums.py from the
projects' published checksum files), whatever a mirror's checksum file says: a mirror that could
swap an artifact could swap its checksum file too. A version outside the table needs a pin, or
`artifacts.allowUnlistedVersions: true` (then the published checksum is trusted, with a warning).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubeinit.connection import make_dirs
from kubeinit.errors import KubeinitError, UserError
from kubeinit.spec import ClusterSpec

TIMEOUT = 60  # seconds without data before a download is given up


class ArtifactError(KubeinitError):
    """An artifact that cannot be had, or does not match its checksum."""


class UnlistedVersion(ArtifactError, UserError):
    """A version kubeinit has no digest for, neither pinned nor allowed (bad input: exit 2)."""

    resumable = False  # re-running cannot help: the cluster file must change


TABLE = Path(__file__).with_name("data") / "checksums.json"
_table: dict[str, dict[str, dict[str, str]]] | None = None


def table() -> dict[str, dict[str, dict[str, str]]]:
    """name -> version -> arch -> sha256, as shipped in the package."""
    global _table
    if _table is None:
        import json

        _table = json.loads(TABLE.read_text())["artifacts"]
    return _table


def known_sha256(name: str, version: str, arch: str) -> str | None:
    return table().get(name, {}).get(version.lstrip("v"), {}).get(arch)


_warned: set[str] = set()


def warn_once(key: str, text: str) -> None:
    """A warning printed once per process (hosts plan in parallel: one line, not one per host)."""
    with _memo_lock:
        if key in _warned:
            return
        _warned.add(key)
    from kubeinit import ui

    ui.warn(text)


@dataclass(frozen=True)
class Release:
    name: str  # the spec's component name: containerd, runc, cni-plugins, crictl, etcd, kubelet, kubectl
    version: str
    arch: str
    url: str  # where the file is fetched from (the mirror's URL when one is set)
    sums_url: str  # the published checksum file
    filename: str  # the artifact's name, as the checksum file lists it
    pinned: str | None = None  # sha256 from the spec
    allow_unlisted: bool = False  # artifacts.allowUnlistedVersions: a version outside the table may use its sums

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def upstream(name: str, version: str, arch: str) -> tuple[str, str]:
    """(artifact URL, checksum file URL) at the project's own release site."""
    v, a = version.lstrip("v"), arch
    gh = "https://github.com"
    if name == "containerd":
        url = f"{gh}/containerd/containerd/releases/download/v{v}/containerd-{v}-linux-{a}.tar.gz"
        return url, url + ".sha256sum"
    if name == "runc":
        base = f"{gh}/opencontainers/runc/releases/download/v{v}"
        return f"{base}/runc.{a}", f"{base}/runc.sha256sum"
    if name == "cni-plugins":
        url = f"{gh}/containernetworking/plugins/releases/download/v{v}/cni-plugins-linux-{a}-v{v}.tgz"
        return url, url + ".sha256"
    if name == "crictl":
        url = f"{gh}/kubernetes-sigs/cri-tools/releases/download/v{v}/crictl-v{v}-linux-{a}.tar.gz"
        return url, url + ".sha256"
    if name == "etcd":
        base = f"{gh}/etcd-io/etcd/releases/download/v{v}"
        return f"{base}/etcd-v{v}-linux-{a}.tar.gz", f"{base}/SHA256SUMS"
    if name in ("kubelet", "kubectl", "kubeadm"):
        url = f"https://dl.k8s.io/release/v{v}/bin/linux/{a}/{name}"
        return url, url + ".sha256"
    raise ValueError(f"no release location known for {name!r}")


def mirrored(url: str, mirror: str | None) -> str:
    """`https://host/path` -> `<mirror>/host/path`; a mirror directory becomes a file:// URL."""
    if not mirror:
        return url
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().resolve().as_uri()
    u = urllib.parse.urlsplit(url)
    return f"{mirror.rstrip('/')}/{u.netloc}{u.path}"


def release(spec: ClusterSpec, name: str, arch: str) -> Release:
    a = spec.artifact(name)
    url, sums = upstream(name, a.version, arch)
    m = spec.artifacts.mirror
    if m and m.lower().startswith("http://"):  # validation refused it unless allowInsecureMirror
        warn_once(
            "insecure-mirror",
            f"artifacts.mirror {m} is plain http (artifacts.allowInsecureMirror: true): "
            "artifacts are still checked against kubeinit's checksum table or the pinned sha256",
        )
    return Release(
        name,
        a.version,
        arch,
        mirrored(url, m),
        mirrored(sums, m),
        url.rsplit("/", 1)[1],
        a.sha256,
        spec.artifacts.allow_unlisted_versions,
    )


# --- the cache -----------------------------------------------------------------


def home() -> Path:
    return Path(os.environ.get("KUBEINIT_HOME") or Path.home() / ".kubeinit")


def cache_dir() -> Path:
    return home() / "cache"


def cache_path(url: str) -> Path:
    """Where a URL's file is kept: `<cache>/<host>/<path>`. Keyed by the URL actually used, as a
    mirror may hold other bytes than upstream; for upstream downloads this is the mirror layout,
    so a filled cache can be copied to an air-gapped site and named as `artifacts.mirror`."""
    u = urllib.parse.urlsplit(url)
    where = u.netloc or "file"
    parts = [p for p in urllib.parse.unquote(u.path).split("/") if p not in ("", ".", "..")]
    return cache_dir().joinpath(where, *parts)


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def cached(rel: Release, digest: str) -> Path | None:
    """The cached file if it was verified against `digest` and has not changed since."""
    p = cache_path(rel.url)
    try:
        want = f"{digest} {p.stat().st_size} {p.stat().st_mtime_ns}"
        return p if _record(p).read_text().strip() == want else None
    except OSError:
        return None


_memo: dict[tuple[str, str], str] = {}  # (checksum file URL, artifact name) -> its digest, for this process
_failed: dict[str, ArtifactError] = {}  # URL -> why it failed: parallel hosts fail once, not N times
_memo_lock = threading.Lock()


def expected_sha256(rel: Release) -> str:
    """The digest the artifact must have: pinned in the spec, else kubeinit's table's, else (only when
    allowed) the published one (its checksum file is small and cached too, so a re-run does not
    fetch it again)."""
    if rel.pinned:
        return rel.pinned
    if (known := known_sha256(rel.name, rel.version, rel.arch)) is not None:
        return known
    if not rel.allow_unlisted:
        raise UnlistedVersion(
            f"{rel.name} {rel.version} (linux/{rel.arch}) is not in kubeinit's checksum table, so nothing vouches for "
            f"what a mirror serves; pin its digest as artifacts.{rel.name}.sha256 in the cluster file, or set "
            "artifacts.allowUnlistedVersions: true to trust the release's published checksum"
        )
    warn_once(
        f"unlisted {rel.name} {rel.version} {rel.arch}",
        f"{rel.name} {rel.version} (linux/{rel.arch}) is not in kubeinit's checksum table: checked against the "
        f"published checksum only (artifacts.allowUnlistedVersions: true)",
    )
    key = (rel.sums_url, rel.filename)  # one SHA256SUMS may list several artifacts
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    path = cache_path(rel.sums_url)
    if not path.exists():
        with _lock(path):
            if not path.exists():
                data = _get(rel, rel.sums_url, "checksum file")
                _write_atomic(path, data)
    digest = parse_sums(path.read_text(errors="replace"), rel.filename)
    if digest is None:
        raise ArtifactError(f"{rel.label}: the checksum file {rel.sums_url} lists no sha256 for {rel.filename}")
    with _memo_lock:
        _memo[key] = digest
    return digest


def parse_sums(text: str, filename: str) -> str | None:
    """The digest for `filename` in a checksum file: `<hex>  <name>` lines (sha256sum,
    SHA256SUMS) or a bare `<hex>` (dl.k8s.io's .sha256, crictl's)."""
    bare = None
    for line in text.splitlines():
        f = line.split()
        if not f or not re.fullmatch(r"[0-9a-fA-F]{64}", f[0]):
            continue
        if len(f) == 1:
            bare = f[0].lower()
        elif f[1].lstrip("*").removeprefix("./").rsplit("/", 1)[-1] == filename:
            return f[0].lower()
    return bare


def fetch(rel: Release, digest: str | None = None) -> Path:
    """Download and verify `rel` into the cache unless it is there; return its path.
    Raises ArtifactError (one sentence) when it cannot be had or does not match."""
    digest = digest or expected_sha256(rel)
    path = cache_path(rel.url)
    with _memo_lock:
        if rel.url in _failed:
            raise _failed[rel.url]
    with _lock(path):  # parallel hosts: the first downloads, the others find it done
        if (p := cached(rel, digest)) is not None:
            return p
        try:
            _download(rel, path, digest)
        except ArtifactError as e:
            with _memo_lock:
                _failed[rel.url] = e
            raise
    return path


def _download(rel: Release, path: Path, digest: str) -> None:
    make_dirs(path.parent, 0o700)  # the cache, in the private workspace
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    h = hashlib.sha256()
    try:
        with _open(rel, rel.url, "artifact") as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
        got = h.hexdigest()
        if got != digest:
            source = (
                "pinned in the spec"
                if rel.pinned
                else "kubeinit's checksum table"
                if known_sha256(rel.name, rel.version, rel.arch)
                else f"published in {rel.sums_url.rsplit('/', 1)[1]}"
            )
            raise ArtifactError(
                f"{rel.label} from {rel.url} does not match its checksum: expected sha256 {digest} ({source}), "
                f"got {got}; the download was discarded and nothing was installed"
            )
        os.replace(tmp, path)  # only a verified file ever has the cache's name
        st = path.stat()
        _write_atomic(_record(path), f"{digest} {st.st_size} {st.st_mtime_ns}\n".encode())
    finally:
        tmp.unlink(missing_ok=True)


def _get(rel: Release, url: str, what: str) -> bytes:
    with _open(rel, url, what) as r:
        return r.read()


@contextmanager
def _open(rel: Release, url: str, what: str):
    import urllib.error  # urllib.request pulls in http.client, email, ssl: only a download pays for it
    import urllib.request

    try:
        r = urllib.request.urlopen(url, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        raise ArtifactError(
            f"{rel.label}: cannot download the {what} {url}: HTTP {e.code} {e.reason}"
            + (_missing_hint(rel) if e.code == 404 else "")
        ) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        missing = isinstance(reason, FileNotFoundError) or "No such file" in str(reason)
        raise ArtifactError(
            f"{rel.label}: cannot download the {what} {url}: {reason}" + (_missing_hint(rel) if missing else "")
        ) from None
    with r:
        yield r


def _missing_hint(rel: Release) -> str:
    if rel.name == "image":  # artifacts.images[]: a URL the user gave, no upstream layout behind it
        return "; check its url in artifacts.images of the cluster file"
    if rel.url != upstream(rel.name, rel.version, rel.arch)[0]:
        where = "the mirror (artifacts.mirror) may lack it: add it there"
    else:
        where = f"check artifacts.{rel.name}.version"
    return f"; {where}, or set artifacts.{rel.name}.enabled: false in the cluster file to leave {rel.name} out"


def _write_atomic(path: Path, data: bytes) -> None:
    make_dirs(path.parent, 0o700)  # the cache, in the private workspace
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@contextmanager
def _lock(path: Path):
    """A per-file lock (flock: between threads and between kubeinit processes)."""
    make_dirs(path.parent, 0o700)  # the cache, in the private workspace
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
