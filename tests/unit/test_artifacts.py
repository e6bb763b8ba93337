"""Artifacts: upstream URLs, mirrors, checksum files, and the verified download cache
(served by a local HTTP server on 127.0.0.1, laid out like a mirror)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubeinit import artifacts
from kubeinit import spec as specmod
from kubeinit.artifacts import ArtifactError, Release


def test_upstream_release_locations():
    assert artifacts.upstream("containerd", "1.7.24", "amd64") == (
        "https://github.com/containerd/containerd/releases/download/v1.7.24/containerd-1.7.24-linux-amd64.tar.gz",
        "https://github.com/containerd/containerd/releases/download/v1.7.24/containerd-1.7.24-linux-amd64.tar.gz"
        ".sha256sum",
    )
    assert artifacts.upstream("runc", "1.2.3", "arm64") == (
        "https://github.com/opencontainers/runc/releases/download/v1.2.3/runc.arm64",
        "https://github.com/opencontainers/runc/releases/download/v1.2.3/runc.sha256sum",
    )
    assert artifacts.upstream("cni-plugins", "1.6.1", "amd64")[0] == (
        "https://github.com/containernetworking/plugins/releases/download/v1.6.1/cni-plugins-linux-amd64-v1.6.1.tgz"
    )
    assert artifacts.upstream("crictl", "1.31.1", "amd64")[1] == (
        "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.31.1/crictl-v1.31.1-linux-amd64.tar.gz"
        ".sha256"
    )
    assert artifacts.upstream("etcd", "3.5.17", "amd64") == (
        "https://github.com/etcd-io/etcd/releases/download/v3.5.17/etcd-v3.5.17-linux-amd64.tar.gz",
        "https://github.com/etcd-io/etcd/releases/download/v3.5.17/SHA256SUMS",
    )
    assert artifacts.upstream("kubelet", "v1.32.5", "amd64") == (
        "https://dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubelet",
        "https://dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubelet.sha256",
    )


def test_mirror_replaces_the_scheme_and_keeps_host_and_path(tmp_path):
    url = "https://dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubectl"
    assert (
        artifacts.mirrored(url, "http://10.0.0.1:8080/")
        == "http://10.0.0.1:8080/dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubectl"
    )
    assert (
        artifacts.mirrored(url, str(tmp_path)) == f"file://{tmp_path}/dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubectl"
    )
    assert artifacts.mirrored(url, None) == url


def test_release_from_spec_uses_pins_versions_and_mirror():
    spec = specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "hosts": [{"name": "a", "address": "10.0.0.1", "role": "control-plane"}],
            "artifacts": {
                "mirror": "http://m",
                "allowInsecureMirror": True,
                "runc": {"version": "v1.1.5", "sha256": "A" * 64},
            },
        }
    )
    r = artifacts.release(spec, "runc", "amd64")
    assert (r.version, r.pinned, r.filename) == ("1.1.5", "a" * 64, "runc.amd64")
    assert r.url == "http://m/github.com/opencontainers/runc/releases/download/v1.1.5/runc.amd64"
    assert artifacts.release(spec, "containerd", "amd64").version == specmod.DEFAULT_ARTIFACTS["containerd"]


@pytest.mark.parametrize(
    "text",
    [
        "{d}  runc.amd64\n{o}  runc.arm64\n",  # sha256sum
        "{o}  etcd-v3.5.17-linux-arm64.tar.gz\n{d}  runc.amd64\n",  # SHA256SUMS
        "{d} *runc.amd64\n",  # binary mode
        "{d}  ./runc.amd64\n",
        "{d}",  # dl.k8s.io: bare hex, no newline
    ],
)
def test_checksum_file_formats(text):
    d, o = "d" * 64, "0" * 64
    assert artifacts.parse_sums(text.format(d=d, o=o), "runc.amd64") == d


def test_checksum_file_without_the_artifact():
    assert artifacts.parse_sums(f"{'0' * 64}  other\n", "runc.amd64") is None


class Mirror:
    """A directory served over HTTP on 127.0.0.1, counting requests per path."""

    def __init__(self, root: Path):
        self.root, self.hits = root, {}
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                mirror.hits[self.path] = mirror.hits.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def publish(self, upstream_url: str, data: bytes, sums: str | None = None) -> None:
        path = self.root / upstream_url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if sums is not None:
            (self.root / sums.split("://", 1)[1]).write_text(sums_body(data, path.name))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sums_body(data: bytes, name: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))
    m = Mirror(tmp_path / "mirror")
    yield m
    m.close()


def rel_for(mirror_base: str, name="runc", version="1.1.5", pinned=None, allow_unlisted=True) -> Release:
    """A release of a version outside the table, opted in (artifacts.allowUnlistedVersions) unless told:
    these tests are about the published checksum path."""
    url, sums = artifacts.upstream(name, version, "amd64")
    return Release(
        name,
        version,
        "amd64",
        artifacts.mirrored(url, mirror_base),
        artifacts.mirrored(sums, mirror_base),
        url.rsplit("/", 1)[1],
        pinned,
        allow_unlisted,
    )


def test_download_verifies_against_the_published_checksum_and_caches(mirror):
    url, sums = artifacts.upstream("runc", "1.1.5", "amd64")
    mirror.publish(url, b"runc binary", sums)
    rel = rel_for(mirror.url)
    digest = artifacts.expected_sha256(rel)
    assert digest == hashlib.sha256(b"runc binary").hexdigest()
    path = artifacts.fetch(rel, digest)
    assert path.read_bytes() == b"runc binary"
    assert str(path).startswith(str(artifacts.cache_dir()))
    assert artifacts.cached(rel, digest) == path
    artifacts.fetch(rel, digest)
    assert mirror.hits["/github.com/opencontainers/runc/releases/download/v1.1.5/runc.amd64"] == 1, "downloaded once"
    # a cached file that changed since it was verified is not trusted
    path.write_bytes(b"tampered!!!")
    assert artifacts.cached(rel, digest) is None


def test_parallel_hosts_download_once(mirror):
    url, sums = artifacts.upstream("cni-plugins", "1.1.1", "amd64")
    mirror.publish(url, b"x" * 3_000_000, sums)
    rel = rel_for(mirror.url, "cni-plugins", "1.1.1")
    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(lambda _: artifacts.fetch(rel), range(8)))
    assert len(paths) == 1
    assert mirror.hits[url.replace("https://", "/")] == 1


def test_wrong_checksum_stops_with_one_sentence_and_caches_nothing(mirror):
    url, sums = artifacts.upstream("containerd", "1.6.20", "amd64")
    mirror.publish(url, b"the real archive", sums)
    (mirror.root / url.split("://", 1)[1]).write_bytes(b"a corrupted archive")  # mirror corrupted after publishing
    rel = rel_for(mirror.url, "containerd", "1.6.20")
    with pytest.raises(ArtifactError) as e:
        artifacts.fetch(rel)
    msg = str(e.value)
    assert msg.startswith(
        f"containerd 1.6.20 from {rel.url} does not match its checksum: expected sha256 "
        f"{hashlib.sha256(b'the real archive').hexdigest()} (published in "
        f"containerd-1.6.20-linux-amd64.tar.gz.sha256sum), got "
        f"{hashlib.sha256(b'a corrupted archive').hexdigest()}"
    )
    assert "nothing was installed" in msg and msg.count(". ") == 0
    cached = artifacts.cache_path(rel.url)
    assert not cached.exists() and not [p for p in cached.parent.iterdir() if "partial" in p.name]
    with pytest.raises(ArtifactError):  # other hosts get the same answer without downloading again
        artifacts.fetch(rel)
    assert mirror.hits[url.replace("https://", "/")] == 1


def test_pinned_digest_wins_over_the_published_one(mirror):
    url, sums = artifacts.upstream("runc", "1.1.6", "amd64")
    mirror.publish(url, b"runc", sums)
    rel = rel_for(mirror.url, version="1.1.6", pinned="e" * 64)
    assert artifacts.expected_sha256(rel) == "e" * 64
    with pytest.raises(ArtifactError, match=r"expected sha256 e{64} \(pinned in the spec\)"):
        artifacts.fetch(rel)


def test_component_missing_from_the_mirror_says_how_to_leave_it_out(mirror):
    rel = rel_for(mirror.url, "crictl", "1.31.1")
    with pytest.raises(ArtifactError) as e:
        artifacts.expected_sha256(rel)
    msg = str(e.value)
    assert "crictl 1.31.1: cannot download the checksum file" in msg and "HTTP 404" in msg
    assert "artifacts.crictl.enabled: false" in msg


def test_directory_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))
    root = tmp_path / "offline"
    url, sums = artifacts.upstream("runc", "1.1.7", "amd64")
    (root / url.split("://", 1)[1]).parent.mkdir(parents=True)
    (root / url.split("://", 1)[1]).write_bytes(b"runc 1.1.7")
    (root / sums.split("://", 1)[1]).write_text(sums_body(b"runc 1.1.7", "runc.amd64"))
    rel = rel_for(str(root), version="1.1.7")
    assert artifacts.fetch(rel).read_bytes() == b"runc 1.1.7"
    missing = rel_for(str(root), "crictl", "1.31.1")
    with pytest.raises(ArtifactError, match="mirror .* may lack it.*artifacts.crictl.enabled: false"):
        artifacts.expected_sha256(missing)


# --- kubeinit's own checksum table: a mirror cannot vouch for itself --------------------------


def spec_for(mirror: str, name: str, version: str, arch: str = "amd64", **artifacts_fields):
    return specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "hosts": [{"name": "a", "address": "10.0.0.1", "role": "control-plane"}],
            "artifacts": {
                "mirror": mirror,
                "allowInsecureMirror": True,
                "arch": arch,
                name: {"version": version},
                **artifacts_fields,
            },
        }
    )


def test_the_shipped_table_covers_the_defaults_with_real_digests():
    t = artifacts.table()
    assert set(t) == {"containerd", "runc", "cni-plugins", "crictl", "etcd", "kubelet", "kubectl", "kubeadm"}
    for name, versions in t.items():
        for version, arches in versions.items():
            assert set(arches) == {"amd64", "arm64"}, (name, version)
            assert all(len(d) == 64 and int(d, 16) >= 0 for d in arches.values()), (name, version)
    digests = [d for v in t.values() for a in v.values() for d in a.values()]
    assert len(digests) == len(set(digests)), "no digest twice: a copy error would show as one"
    for name, version in specmod.DEFAULT_ARTIFACTS.items():
        assert version in t[name], f"the default {name} {version} must be in the table"
    for name in ("kubelet", "kubectl", "kubeadm"):
        assert specmod.DEFAULT_VERSION.lstrip("v") in t[name]
        assert {v.rsplit(".", 1)[0] for v in t[name]} >= {"1.33", "1.34", "1.35"}


def test_a_tampered_artifact_with_a_matching_checksum_file_is_refused_for_every_version_in_the_table(mirror):
    """The audit's attack: the mirror serves a repacked archive and a checksum file recomputed for it.
    Whatever that file says, the table's digest decides, for every (name, version, arch) shipped."""
    cases = [(n, v, a) for n, vs in artifacts.table().items() for v, arches in vs.items() for a in arches]
    assert len(cases) > 150
    for name, version, arch in cases:
        url, sums = artifacts.upstream(name, version, arch)
        fake = f"marker binary posing as {name} {version} {arch}".encode()
        path = mirror.root / url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fake)
        sums_path = mirror.root / sums.split("://", 1)[1]
        old = sums_path.read_text() if sums_path.exists() else ""  # etcd's SHA256SUMS and runc's list both arches
        sums_path.write_text(
            old
            + (
                hashlib.sha256(fake).hexdigest()
                if sums.endswith(".sha256") and name not in ("cni-plugins", "crictl")
                else sums_body(fake, path.name)
            )
        )
        rel = artifacts.release(spec_for(mirror.url, name, version, arch), name, arch)
        assert artifacts.expected_sha256(rel) == artifacts.known_sha256(name, version, arch)
        with pytest.raises(ArtifactError) as e:
            artifacts.fetch(rel)
        assert f"{name} {version} from {rel.url} does not match its checksum" in str(e.value)
        assert "(kubeinit's checksum table)" in str(e.value) and "nothing was installed" in str(e.value)
        assert not artifacts.cache_path(rel.url).exists()
    assert not any(p.endswith((".sha256", ".sha256sum", "SHA256SUMS")) for p in mirror.hits), (
        "a listed version never asks the mirror for a checksum"
    )


def test_a_pinned_digest_still_works_for_listed_and_unlisted_versions(mirror):
    for name, version in (("containerd", "1.7.24"), ("containerd", "1.6.20")):
        url, _ = artifacts.upstream(name, version, "amd64")
        mirror.publish(url, f"a site's own {name} {version} build".encode())
        data = f"a site's own {name} {version} build".encode()
        pin = hashlib.sha256(data).hexdigest()
        rel = artifacts.release(
            spec_for(mirror.url, name, version, containerd={"version": version, "sha256": pin}), name, "amd64"
        )
        assert artifacts.fetch(rel).read_bytes() == data


def test_an_unlisted_version_is_refused_unless_pinned_or_allowed(mirror, monkeypatch):
    from kubeinit import ui
    from kubeinit.errors import UserError

    url, sums = artifacts.upstream("runc", "1.1.5", "amd64")
    mirror.publish(url, b"runc from a mirror", sums)
    rel = artifacts.release(spec_for(mirror.url, "runc", "1.1.5"), "runc", "amd64")
    with pytest.raises(artifacts.UnlistedVersion) as e:
        artifacts.expected_sha256(rel)
    assert isinstance(e.value, UserError) and e.value.exit_code == 2
    assert str(e.value) == (
        "runc 1.1.5 (linux/amd64) is not in kubeinit's checksum table, so nothing vouches for what a mirror serves; "
        "pin its digest as artifacts.runc.sha256 in the cluster file, or set artifacts.allowUnlistedVersions: true "
        "to trust the release's published checksum"
    )
    assert not mirror.hits, "refused before anything is fetched"
    warnings: list[str] = []
    monkeypatch.setattr(ui, "warn", warnings.append)
    monkeypatch.setattr(artifacts, "_warned", set())
    allowed = artifacts.release(spec_for(mirror.url, "runc", "1.1.5", allowUnlistedVersions=True), "runc", "amd64")
    assert artifacts.fetch(allowed).read_bytes() == b"runc from a mirror"
    artifacts.expected_sha256(allowed)
    unlisted = [w for w in warnings if "not in kubeinit's checksum table" in w]
    assert len(unlisted) == 1 and "runc 1.1.5" in unlisted[0], warnings


def test_an_http_mirror_is_refused_unless_allowed_and_then_warned_once(tmp_path, monkeypatch):
    from kubeinit import ui
    from kubeinit.errors import SpecError

    base = {
        "apiVersion": specmod.API_VERSION,
        "kind": "Cluster",
        "hosts": [{"name": "a", "address": "10.0.0.1", "role": "control-plane"}],
    }
    with pytest.raises(SpecError) as e:
        specmod.from_dict({**base, "artifacts": {"mirror": "http://mirror.internal/"}})
    assert e.value.exit_code == 2 and str(e.value).startswith(
        "artifacts.mirror: 'http://mirror.internal/' is plain http"
    )
    assert "artifacts.allowInsecureMirror: true" in str(e.value)
    for fine in ("https://mirror.internal/", str(tmp_path), f"file://{tmp_path}"):
        specmod.from_dict({**base, "artifacts": {"mirror": fine}})
    warnings: list[str] = []
    monkeypatch.setattr(ui, "warn", warnings.append)
    monkeypatch.setattr(artifacts, "_warned", set())
    spec = specmod.from_dict({**base, "artifacts": {"mirror": "http://mirror.internal/", "allowInsecureMirror": True}})
    for name in ("containerd", "runc", "etcd"):
        artifacts.release(spec, name, "amd64")
    assert len(warnings) == 1 and "plain http" in warnings[0]
