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
        ".sha256sum")
    assert artifacts.upstream("runc", "1.2.3", "arm64") == (
        "https://github.com/opencontainers/runc/releases/download/v1.2.3/runc.arm64",
        "https://github.com/opencontainers/runc/releases/download/v1.2.3/runc.sha256sum")
    assert artifacts.upstream("cni-plugins", "1.6.1", "amd64")[0] == (
        "https://github.com/containernetworking/plugins/releases/download/v1.6.1/cni-plugins-linux-amd64-v1.6.1.tgz")
    assert artifacts.upstream("crictl", "1.31.1", "amd64")[1] == (
        "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.31.1/crictl-v1.31.1-linux-amd64.tar.gz"
        ".sha256")
    assert artifacts.upstream("etcd", "3.5.17", "amd64") == (
        "https://github.com/etcd-io/etcd/releases/download/v3.5.17/etcd-v3.5.17-linux-amd64.tar.gz",
        "https://github.com/etcd-io/etcd/releases/download/v3.5.17/SHA256SUMS")
    assert artifacts.upstream("kubelet", "v1.32.5", "amd64") == (
        "https://dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubelet",
        "https://dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubelet.sha256")


def test_mirror_replaces_the_scheme_and_keeps_host_and_path(tmp_path):
    url = "https://dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubectl"
    assert artifacts.mirrored(url, "http://10.0.0.1:8080/") == "http://10.0.0.1:8080/dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubectl"
    assert artifacts.mirrored(url, str(tmp_path)) == f"file://{tmp_path}/dl.k8s.io/release/v1.32.5/bin/linux/amd64/kubectl"
    assert artifacts.mirrored(url, None) == url


def test_release_from_spec_uses_pins_versions_and_mirror():
    spec = specmod.from_dict({"apiVersion": specmod.API_VERSION, "kind": "Cluster",
                              "hosts": [{"name": "a", "address": "10.0.0.1", "role": "control-plane"}],
                              "artifacts": {"mirror": "http://m", "runc": {"version": "v1.1.5", "sha256": "A" * 64}}})
    r = artifacts.release(spec, "runc", "amd64")
    assert (r.version, r.pinned, r.filename) == ("1.1.5", "a" * 64, "runc.amd64")
    assert r.url == "http://m/github.com/opencontainers/runc/releases/download/v1.1.5/runc.amd64"
    assert artifacts.release(spec, "containerd", "amd64").version == specmod.DEFAULT_ARTIFACTS["containerd"]


@pytest.mark.parametrize("text", [
    "{d}  runc.amd64\n{o}  runc.arm64\n",  # sha256sum
    "{o}  etcd-v3.5.17-linux-arm64.tar.gz\n{d}  runc.amd64\n",  # SHA256SUMS
    "{d} *runc.amd64\n",  # binary mode
    "{d}  ./runc.amd64\n",
    "{d}",  # dl.k8s.io: bare hex, no newline
])
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


def rel_for(mirror_base: str, name="runc", version="1.1.5", pinned=None) -> Release:
    url, sums = artifacts.upstream(name, version, "amd64")
    return Release(name, version, "amd64", artifacts.mirrored(url, mirror_base), artifacts.mirrored(sums, mirror_base),
                   url.rsplit("/", 1)[1], pinned)


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
    assert msg.startswith(f"containerd 1.6.20 from {rel.url} does not match its checksum: expected sha256 "
                          f"{hashlib.sha256(b'the real archive').hexdigest()} (published in "
                          f"containerd-1.6.20-linux-amd64.tar.gz.sha256sum), got "
                          f"{hashlib.sha256(b'a corrupted archive').hexdigest()}")
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
