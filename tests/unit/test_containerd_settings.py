"""runtime.containerd: the cluster file's containerd CRI settings - typed ones written in the
layout of the installed containerd's config version, a raw TOML patch merged last, registry
mirrors as certs.d hosts.toml files - validated when the file is read, and re-applied (with
one containerd restart) only when they change."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
import scripted
import yaml
from test_runtime_plan import PINS, VERSIONS, ScriptedHost, converged_state

from kubeinit import spec as specmod
from kubeinit import tomlw
from kubeinit.connection import LocalConnection
from kubeinit.errors import SpecError
from kubeinit.facts import Facts
from kubeinit.facts.containerd import KubeinitMirrors
from kubeinit.hostops import install
from kubeinit.phases import runtime as rt
from kubeinit.render import render

V2, V3 = "1.7.24", "2.0.1"
CRI2 = ("plugins", "io.containerd.grpc.v1.cri")
RUNTIME3 = ("plugins", "io.containerd.cri.v1.runtime")
IMAGES3 = ("plugins", "io.containerd.cri.v1.images")


def make(containerd: dict | None = None, version: str = V2, enabled: bool = True) -> specmod.ClusterSpec:
    arts = {n: {"version": VERSIONS[n], "sha256": PINS[n]} for n in VERSIONS}
    arts["containerd"] = {"version": version, "sha256": PINS["containerd"], "enabled": enabled}
    raw = {
        "apiVersion": specmod.API_VERSION,
        "kind": "Cluster",
        "name": "t",
        "kubernetesVersion": "v1.32.5",
        "hosts": [{"name": "n1", "address": "10.0.0.1", "role": "control-plane"}],
        "artifacts": arts,
    }
    if containerd is not None:
        raw["runtime"] = {"containerd": containerd}
    return specmod.from_dict(raw)


def config(spec: specmod.ClusterSpec) -> dict:
    return tomllib.loads(rt.containerd_config(spec, spec.artifact("containerd").version))


def at(data: dict, *path: str):
    for p in path:
        data = data[p]
    return data


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))


# --- rendering, per config version --------------------------------------------------------


def test_restrict_oom_score_adj_goes_where_each_config_version_reads_it():
    assert at(config(make({"restrictOOMScoreAdj": True}, V2)), *CRI2, "restrict_oom_score_adj") is True
    v3 = config(make({"restrictOOMScoreAdj": True}, V3))
    assert v3["version"] == 3 and at(v3, *RUNTIME3, "restrict_oom_score_adj") is True
    assert "io.containerd.grpc.v1.cri" not in v3["plugins"]  # not the version 2 place
    # kubeinit's own settings in that table are kept
    assert at(v3, *RUNTIME3, "containerd", "runtimes", "runc", "options", "SystemdCgroup") is True


def test_without_settings_the_config_is_as_before():
    for version in (V2, V3):
        text = rt.containerd_config(make(None, version), version)
        assert "restrict_oom_score_adj" not in text and "config_path" not in text and "configPatch" not in text
        assert text.startswith("# Written by kubeinit for containerd")


def test_sandbox_image_replaces_the_default_pause_image():
    assert at(config(make({}, V2)), *CRI2, "sandbox_image") == "registry.k8s.io/pause:3.10"
    assert (
        at(config(make({"sandboxImage": "mirror.example.com/pause:3.10"}, V2)), *CRI2, "sandbox_image")
        == "mirror.example.com/pause:3.10"
    )
    assert (
        at(config(make({"sandboxImage": "mirror.example.com/pause:3.10"}, V3)), *IMAGES3, "pinned_images", "sandbox")
        == "mirror.example.com/pause:3.10"
    )


def test_registry_mirrors_point_containerd_at_certs_d_and_write_hosts_toml():
    spec = make(
        {
            "registryMirrors": {
                "docker.io": ["https://m1.example.com", "http://m2.example.com:5000/v2"],
                "registry.example.com:5000": "https://m3.example.com",
            }
        },
        V2,
    )
    assert at(config(spec), *CRI2, "registry", "config_path") == rt.CERTS_D
    assert (
        at(
            config(make({"registryMirrors": {"_default": ["https://m.example.com"]}}, V3)),
            *IMAGES3,
            "registry",
            "config_path",
        )
        == rt.CERTS_D
    )
    files = rt.mirror_files(spec)
    assert list(files) == [f"{rt.CERTS_D}/docker.io/hosts.toml", f"{rt.CERTS_D}/registry.example.com:5000/hosts.toml"]
    hosts = tomllib.loads(files[f"{rt.CERTS_D}/docker.io/hosts.toml"])
    assert list(hosts["host"]) == ["https://m1.example.com", "http://m2.example.com:5000/v2"]  # order = try order
    assert hosts["host"]["https://m1.example.com"]["capabilities"] == ["pull", "resolve"]


def test_config_patch_is_merged_table_by_table_and_wins():
    patch = (
        '[plugins."io.containerd.grpc.v1.cri"]\nmax_container_log_line_size = 65536\n'
        'sandbox_image = "other/pause:1"\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nNoNewKeyring = true\n'
        '[debug]\nlevel = "debug"\n'
    )
    spec = make({"restrictOOMScoreAdj": True, "configPatch": patch}, V2)
    text = rt.containerd_config(spec, V2)
    data = tomllib.loads(text)
    cri = at(data, *CRI2)
    assert cri["max_container_log_line_size"] == 65536 and cri["sandbox_image"] == "other/pause:1"
    assert cri["restrict_oom_score_adj"] is True  # the typed setting stays
    opts = at(cri, "containerd", "runtimes", "runc", "options")
    assert opts == {"BinaryName": rt.RUNC, "SystemdCgroup": True, "NoNewKeyring": True}
    assert data["debug"] == {"level": "debug"} and data["grpc"]["address"] == rt.SOCKET
    assert text.startswith("# Written by kubeinit") and "configPatch of the cluster file is merged in" in text


def test_a_value_that_needs_escaping_stays_valid_toml():
    spec = make({"sandboxImage": "registry.example.com/pause:3.10@sha256:" + "a" * 64}, V2)
    assert at(config(spec), *CRI2, "sandbox_image").endswith("a" * 64)


# --- validation, when the file is read ------------------------------------------------------


@pytest.mark.parametrize(
    "containerd, version, path, words",
    [
        ({"configPatch": "[plugins\nx = 1"}, V2, "runtime.containerd.configPatch", "is not valid TOML"),
        ({"configPatch": "version = 3\n"}, V2, "runtime.containerd.configPatch", "leave version out"),
        (
            {"configPatch": '[plugins."io.containerd.cri.v1.runtime"]\nrestrict_oom_score_adj = true\n'},
            V2,
            "runtime.containerd.configPatch",
            "config version 3",
        ),
        (
            {"configPatch": '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "x"\n'},
            V3,
            "runtime.containerd.configPatch",
            "moved to io.containerd.cri.v1",
        ),
        (
            {"registryMirrors": {"Docker.IO/x": ["https://m.example.com"]}},
            V2,
            "runtime.containerd.registryMirrors.Docker.IO/x",
            "is not a registry host",
        ),
        (
            {"registryMirrors": {"docker.io": ["ftp://m.example.com"]}},
            V2,
            "runtime.containerd.registryMirrors.docker.io[0]",
            "is not an http(s) URL",
        ),
        ({"registryMirrors": {"docker.io": []}}, V2, "runtime.containerd.registryMirrors.docker.io", "one or more"),
        ({"restrictOOMScoreAdj": "yes"}, V2, "runtime.containerd.restrictOOMScoreAdj", "true or false"),
        ({"sandboxImage": 'pause" = 1'}, V2, "runtime.containerd.sandboxImage", "not an image reference"),
        ({"restrictOomScoreAdj": True}, V2, "runtime.containerd.restrictOomScoreAdj", "unknown field"),
    ],
)
def test_bad_settings_are_one_line_naming_the_field(containerd, version, path, words):
    with pytest.raises(SpecError) as e:
        make(containerd, version)
    assert e.value.path == path and words in e.value.message, str(e.value)


def test_settings_for_a_containerd_kubeinit_does_not_install_are_refused():
    with pytest.raises(SpecError) as e:
        make({"restrictOOMScoreAdj": True}, enabled=False)
    assert e.value.path == "runtime.containerd" and "artifacts.containerd.enabled is false" in e.value.message
    make({"restrictOOMScoreAdj": False}, enabled=False)  # nothing set: nothing to refuse


def test_a_patch_for_version_3_streaming_options_is_accepted():
    make({"configPatch": '[plugins."io.containerd.grpc.v1.cri"]\nstream_server_address = "127.0.0.1"\n'}, V3)


# --- the plan: re-applied only when it changes ------------------------------------------------


def converged_with(spec) -> tuple[dict, dict, dict]:
    probe, stamps, files = converged_state()
    cfg = rt.containerd_config(spec, V2)
    unit = render("containerd/containerd.service.j2", containerd_version=V2, containerd=rt.CONTAINERD, config=rt.CONFIG)
    files[rt.CONFIG] = (scripted.sha(cfg), 0o644)
    applied = install.applied_text(
        {rt.CONTAINERD: "100:0:0:5", rt.CONFIG: scripted.sha(cfg), rt.UNIT: scripted.sha(unit)}
    )
    files[rt.APPLIED] = (scripted.sha(applied), 0o644)
    for path, content in rt.mirror_files(spec).items():
        files[path] = (scripted.sha(content), 0o644)
    return probe, stamps, files


def changes(spec, state) -> list[str]:
    steps = scripted.plan_phase(ScriptedHost(*state), spec, rt.RUNTIME)
    return [b for b in scripted.brief(steps) if not b.startswith("skip")]


def test_a_changed_setting_uploads_the_config_and_restarts_containerd_once():
    before = make({})
    after = make({"restrictOOMScoreAdj": True})
    assert changes(before, converged_with(before)) == []
    assert changes(after, converged_with(before)) == [
        f"upload {rt.CONFIG}",
        "run (re)start containerd 1.7.24 on its new binary/config",
    ]
    assert changes(after, converged_with(after)) == []  # and the next run only skips


def test_mirrors_are_written_without_a_restart_once_config_path_is_set_and_stale_ones_removed():
    one = make({"registryMirrors": {"docker.io": ["https://m1.example.com"]}})
    two = make({"registryMirrors": {"docker.io": ["https://m2.example.com"], "quay.io": ["https://q.example.com"]}})
    state = converged_with(one)
    assert changes(two, state) == [
        f"upload {rt.CERTS_D}/docker.io/hosts.toml",
        f"upload {rt.CERTS_D}/quay.io/hosts.toml",
    ]
    # a mirror dropped from the file: kubeinit's hosts.toml goes; one kubeinit did not write is never listed
    probe, stamps, files = converged_with(two)
    probe["mirrors"] = {f"{rt.CERTS_D}/{r}/hosts.toml" for r in ("docker.io", "quay.io", "ghcr.io")}
    steps = scripted.plan_phase(ScriptedHost(probe, stamps, files), two, rt.RUNTIME)
    rm = [s for s in steps if getattr(s, "note", "").startswith("remove registry mirrors")]
    assert len(rm) == 1 and rm[0].argv[-1] == f"{rt.CERTS_D}/ghcr.io/hosts.toml" and "(ghcr.io)" in rm[0].note
    assert not [b for b in scripted.brief(steps) if not b.startswith("skip") and "remove registry" not in b]


def test_the_mirrors_fact_lists_only_hosts_toml_files_kubeinit_wrote(tmp_path):
    d = tmp_path / "certs.d"
    for reg, first in (("docker.io", rt.MIRROR_HEADER + ".docker.io; kubeinit rewrites it"), ("mine.io", "server = 1")):
        (d / reg).mkdir(parents=True)
        (d / reg / "hosts.toml").write_text(first + "\n")
    (d / "empty.io").mkdir()
    mirrors = KubeinitMirrors(str(d), rt.MIRROR_HEADER)
    assert Facts(LocalConnection()).get(mirrors) == {f"{d}/docker.io/hosts.toml"}
    assert rt.MIRRORS == KubeinitMirrors(rt.CERTS_D, rt.MIRROR_HEADER)


# --- the TOML writer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"version": 2, "a": {"b": {"c": [1, 2.5, 'x\ty"\x7f', True]}}, "e": {}},
        {"plugins": {"io.containerd.grpc.v1.cri": {"containerd": {"runtimes": {"runc": {"options": {"X": 1}}}}}}},
        {"arr": [{"n": 1, "t": {"u": 2}}, {"t": {"u": 3}}], "inline": [{"a": 1}, 2], "k y": "é"},
    ],
)
def test_toml_writer_round_trips(data):
    assert tomllib.loads(tomlw.dumps(data)) == data


def test_toml_writer_refuses_what_toml_cannot_hold():
    with pytest.raises(tomlw.TomlError):
        tomlw.dumps({"a": None})


def test_init_defaults_show_the_settings():
    out = subprocess.run(
        [sys.executable, "-m", "kubeinit", "config", "print", "init-defaults"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    c = yaml.safe_load(out)["runtime"]["containerd"]
    assert c["restrictOOMScoreAdj"] is False and c["registryMirrors"] == {}
    assert "sandboxImage" in out and "configPatch" in out
    assert yaml.safe_load(out)["artifacts"]["images"] == [] and "sha256: <sha256sum of the file>" in out
