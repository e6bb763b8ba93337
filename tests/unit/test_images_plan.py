"""The images phase (artifacts.images) over scripted facts, and the cluster file's image entries.

A tarball is verified where kubeinit runs before any host is touched, then staged and imported
on each host that does not list the image yet; a host that lists it is skipped, and the list
comes in the runtime phase's round trip.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
import scripted
from test_runtime_plan import HEALTHY, PINS, VERSIONS
from test_runtime_plan import ScriptedHost as RuntimeHost

from kubeinit import artifacts
from kubeinit import spec as specmod
from kubeinit.errors import SpecError
from kubeinit.phases import images as im
from kubeinit.phases import runtime as rt
from kubeinit.steps import Local, Run, Skip, Transfer

APISERVER = "registry.k8s.io/kube-apiserver:v1.32.5"
PAUSE = "registry.k8s.io/pause:3.10"


class Host(RuntimeHost):
    """The runtime phase's facts plus the images containerd lists."""

    def __init__(self, listed: list[str] = (), **kw):
        super().__init__(HEALTHY, **kw)
        self.listed = list(listed)

    def typed(self) -> dict:
        return {**super().typed(), im.HELD: frozenset(self.listed)}


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))


@pytest.fixture
def tarballs(tmp_path):
    out = {}
    for name in (APISERVER, PAUSE):
        p = tmp_path / "bundle" / (name.rsplit("/", 1)[1].replace(":", "-") + ".tar")
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(f"tarball of {name}".encode())
        out[name] = p
    return out


def make(entries: list[dict], source: str | None = None) -> specmod.ClusterSpec:
    arts = {n: {"version": VERSIONS[n], "sha256": PINS[n]} for n in VERSIONS}
    return scripted.one_host_spec({**arts, "images": entries}, source=source)


def entry(name: str, path, **kw) -> dict:
    return {"name": name, "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), **kw}


def plan(host, spec):
    return scripted.plan_phase(host, spec, im.IMAGES)


def test_a_host_without_the_images_gets_each_verified_first_then_staged_and_imported(tarballs):
    spec = make([entry(n, p) for n, p in tarballs.items()])
    steps = plan(Host(), spec)
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["Local", "Local", "Transfer", "Run", "Transfer", "Run"], scripted.brief(steps)
    for img, (t, r) in zip(spec.artifacts.images, zip(steps[2::2], steps[3::2], strict=True), strict=True):
        assert (t.local_path, t.sha256, t.mode) == (img.path, img.sha256, 0o600)
        assert t.path == f"{im.STAGING}/{img.sha256}.tar"
        assert r.argv == ("sh", "-c", im.IMPORT, "sh", t.path, *img.names)
        assert f"import image {img.names[0]} into containerd (k8s.io)" == r.note
    for s in steps[:2]:
        s.action()  # the right bytes: verified without error


def test_a_host_that_lists_the_images_only_skips(tarballs):
    spec = make([entry(n, p) for n, p in tarballs.items()])
    steps = plan(Host(listed=[PAUSE, APISERVER, "docker.io/library/other:1"]), spec)
    assert scripted.brief(steps) == [f"skip image {APISERVER} is in containerd", f"skip image {PAUSE} is in containerd"]


def test_only_the_missing_image_is_imported(tarballs):
    spec = make([entry(n, p) for n, p in tarballs.items()])
    steps = [s for s in plan(Host(listed=[PAUSE]), spec) if not isinstance(s, Skip)]
    assert [s.note for s in steps if isinstance(s, (Run, Transfer))] == [
        f"stage image {APISERVER}",
        f"import image {APISERVER} into containerd (k8s.io)",
    ]


def test_a_bundle_of_several_images_is_imported_until_it_has_them_all(tarballs):
    item = {**entry(APISERVER, tarballs[APISERVER]), "names": [APISERVER, PAUSE]}
    del item["name"]
    spec = make([item])
    assert scripted.brief(plan(Host(listed=[APISERVER, PAUSE]), spec)) == [
        f"skip images {APISERVER}, {PAUSE} are in containerd"
    ]
    steps = [s for s in plan(Host(listed=[APISERVER]), spec) if isinstance(s, Run)]
    assert [s.argv[-2:] for s in steps] == [(APISERVER, PAUSE)]
    assert steps[0].note == f"import images {APISERVER}, {PAUSE} into containerd (k8s.io)"


def test_the_image_list_rides_in_the_runtime_phases_round_trip(tarballs):
    spec = make([entry(n, p) for n, p in tarballs.items()])
    host = Host(listed=[PAUSE, APISERVER])
    from factsstub import FactsStub

    from kubeinit.context import Context, Options, Target

    t = Target(spec.hosts[0], lambda h: host, facts=FactsStub(host.typed(), conn=host))
    ctx = Context(spec, [t], Options())
    t.facts.gather(rt.facts(ctx, t))
    list(rt.plan_runtime(ctx, t))
    assert host.commands == 1
    t.facts.gather(im.facts(ctx, t))
    assert all(isinstance(s, Skip) for s in im.plan_images(ctx, t))
    assert host.commands == 1, "the images phase asked nothing more"


def test_no_images_no_probe():
    spec = make([])
    host = Host()
    assert scripted.brief(plan(host, spec)) == ["skip no image tarballs to import (artifacts.images is empty)"]
    assert host.commands == 0


def test_without_ctr_the_import_says_to_run_the_runtime_phase(tmp_path):
    """The real import script under sh, on a PATH without ctr (as on a host whose runtime phase
    has not run): one line, and the staged tarball is removed."""
    staged = tmp_path / "x.tar"
    staged.write_bytes(b"tar")
    path = tmp_path / "bin"
    path.mkdir()
    for tool in ("rm", "grep", "tr"):
        (path / tool).symlink_to(shutil.which(tool))
    r = subprocess.run(
        ["/bin/sh", "-c", im.IMPORT, "sh", str(staged), PAUSE],
        capture_output=True,
        text=True,
        env={"PATH": str(path)},
        check=False,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        (
            "there is no ctr on this host, which imports images into containerd: "
            "run the runtime phase first (kubeinit up --only runtime), or install "
            "containerd's ctr"
        )
    ], r.stderr
    assert not staged.exists()


def test_a_local_tarball_that_does_not_match_is_refused_before_any_host(tarballs):
    e = entry(APISERVER, tarballs[APISERVER])
    e["sha256"] = "0" * 64
    steps = plan(Host(), make([e]))
    with pytest.raises(
        artifacts.ArtifactError,
        match=r"does not match its checksum: expected sha256 0{64} \(pinned in "
        r"artifacts.images\), got [0-9a-f]{64}; nothing was imported",
    ):
        steps[0].action()
    tarballs[APISERVER].unlink()
    with pytest.raises(artifacts.ArtifactError, match="cannot read .* fix its path in artifacts.images"):
        plan(Host(), make([entry(PAUSE, tarballs[PAUSE]), {**e, "sha256": "1" * 64}]))[1].action()


def test_a_url_is_downloaded_once_into_the_cache_and_verified(tarballs):
    e = entry(APISERVER, tarballs[APISERVER])
    url = tarballs[APISERVER].as_uri()
    spec = make([{"name": APISERVER, "url": url, "sha256": e["sha256"]}])
    steps = plan(Host(), spec)
    assert isinstance(steps[0], Local) and "download image " + APISERVER in steps[0].text
    steps[0].action()
    assert isinstance(steps[1], Transfer) and steps[1].local_path == str(artifacts.cache_path(url))
    assert not any(isinstance(s, Local) for s in plan(Host(), spec)), "cached and verified: not fetched again"
    bad = make([{"name": APISERVER, "url": url, "sha256": "2" * 64}])
    with pytest.raises(artifacts.ArtifactError, match="does not match its checksum"):
        plan(Host(), bad)[0].action()
    missing = make([{"name": APISERVER, "url": url + ".gone", "sha256": "2" * 64}])
    with pytest.raises(artifacts.ArtifactError, match="check its url in artifacts.images"):
        plan(Host(), missing)[0].action()


def test_a_relative_path_is_read_next_to_the_cluster_file(tmp_path, tarballs):
    spec = make(
        [{**entry(PAUSE, tarballs[PAUSE]), "path": "bundle/pause-3.10.tar"}], source=str(tmp_path / "cluster.yaml")
    )
    assert spec.artifacts.images[0].path == str(tarballs[PAUSE])


@pytest.mark.parametrize(
    "item, path, words",
    [
        (
            {"name": "pause:3.10", "path": "x.tar", "sha256": "a" * 64},
            "artifacts.images[0].name",
            "full image reference",
        ),
        (
            {"name": "registry.k8s.io/pause", "path": "x.tar", "sha256": "a" * 64},
            "artifacts.images[0].name",
            "with a tag",
        ),
        ({"name": PAUSE, "sha256": "a" * 64}, "artifacts.images[0]", "either url or path"),
        (
            {"name": PAUSE, "path": "x", "url": "https://m/x.tar", "sha256": "a" * 64},
            "artifacts.images[0].url",
            "either",
        ),
        ({"name": PAUSE, "path": "x.tar"}, "artifacts.images[0].sha256", "needs its sha256"),
        ({"name": PAUSE, "path": "x.tar", "sha256": "xyz"}, "artifacts.images[0].sha256", "not a sha256 digest"),
        (
            {"name": PAUSE, "url": "ftp://m/x.tar", "sha256": "a" * 64},
            "artifacts.images[0].url",
            "http(s):// or file://",
        ),
        ({"name": PAUSE, "path": "x.tar", "sha256": "a" * 64, "tag": 1}, "artifacts.images[0].tag", "unknown field"),
        ({"path": "x.tar", "sha256": "a" * 64}, "artifacts.images[0].name", "give the image reference"),
        (
            {"name": PAUSE, "names": [PAUSE], "path": "x.tar", "sha256": "a" * 64},
            "artifacts.images[0].names",
            "or several",
        ),
        ({"names": [], "path": "x.tar", "sha256": "a" * 64}, "artifacts.images[0].names", "is empty"),
        (
            {"names": [PAUSE, "busybox"], "path": "x.tar", "sha256": "a" * 64},
            "artifacts.images[0].names[1]",
            "full image reference",
        ),
        (
            {"names": [PAUSE, PAUSE], "path": "x.tar", "sha256": "a" * 64},
            "artifacts.images[0].names[1]",
            "listed twice",
        ),
    ],
)
def test_bad_image_entries_are_one_line_naming_the_field(item, path, words):
    with pytest.raises(SpecError) as e:
        make([item])
    assert e.value.path == path and words in e.value.message, str(e.value)


def test_an_image_listed_twice_is_refused():
    item = {"name": PAUSE, "path": "x.tar", "sha256": "a" * 64}
    with pytest.raises(SpecError, match=r"artifacts.images\[1\].name: .* is listed twice"):
        make([item, item])
