"""kubeinit.kubeconfig: the one place kubeconfigs are built, read and merged into the user's file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kubeinit import kubeconfig, redact
from kubeinit.errors import UserError

KUBEINIT = Path(__file__).resolve().parents[2] / "kubeinit"
TOKEN = "abcdef.0123456789abcdef"


def write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def mine(tmp_path) -> Path:
    return write(
        tmp_path / "config",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "b",
            "extensions": [{"name": "x"}],
            "clusters": [{"name": n, "cluster": {"server": f"https://{n}:6443"}} for n in ("a", "b")],
            "users": [{"name": n, "user": {"token": f"{n}-token-value"}} for n in ("a", "b")],
            "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in ("a", "b")],
        },
    )


def test_merge_replaces_a_same_named_entry_where_it_stands_and_keeps_the_rest(tmp_path):
    path = mine(tmp_path)
    path.chmod(0o644)
    assert kubeconfig.merge(path, kubeconfig.entry("a", "https://new:6443", "Q0E=", {"token": "new-token-1"})) == "a"
    conf = yaml.safe_load(path.read_text())
    assert [c["name"] for c in conf["clusters"]] == ["a", "b"], "replaced in place, as kubectl does"
    assert conf["clusters"][0]["cluster"]["server"] == "https://new:6443"
    assert conf["current-context"] == "a" and conf["extensions"] == [{"name": "x"}]
    assert path.stat().st_mode & 0o777 == 0o600
    before = path.read_text()
    kubeconfig.merge(path, kubeconfig.entry("a", "https://new:6443", "Q0E=", {"token": "new-token-1"}))
    assert path.read_text() == before, "merging twice changes nothing"


def test_merge_without_making_it_current_and_remove(tmp_path):
    path = mine(tmp_path)
    kubeconfig.merge(
        path, kubeconfig.entry("c", "https://c:6443", "Q0E=", {"token": "c-token-value"}), make_current=False
    )
    assert yaml.safe_load(path.read_text())["current-context"] == "b"
    assert kubeconfig.remove(path, "b") and not kubeconfig.remove(path, "b")
    conf = yaml.safe_load(path.read_text())
    assert conf["current-context"] == ""
    assert [[i["name"] for i in conf[s]] for s in ("clusters", "users", "contexts")] == [["a", "c"]] * 3


def test_a_write_that_fails_leaves_the_file_and_no_temp_file(tmp_path):
    path = mine(tmp_path)
    before = path.read_text()
    with pytest.raises(yaml.representer.RepresenterError):
        kubeconfig.merge(path, kubeconfig.entry("c", "https://c:6443", "Q0E=", {"token": object()}))
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["config"]


def test_secrets_of_a_merged_document_are_masked(tmp_path):
    doc = (
        "apiVersion: v1\nkind: Config\ncurrent-context: z\nclusters: [{name: z, cluster: {server: 'https://z'}}]\n"
        "users: [{name: z, user: {token: aks-user-token-0987}}]\ncontexts: [{name: z, context: {cluster: z, "
        "user: z}}]\n"
    )
    kubeconfig.merge(tmp_path / "config", doc.encode())
    assert "aks-user-token-0987" not in redact.mask("token aks-user-token-0987")
    assert TOKEN not in redact.mask(kubeconfig.bootstrap("https://h:6443", "Q0E=", TOKEN))


def test_a_document_of_the_wrong_shape_is_named_before_the_file_is_touched(tmp_path):
    path = mine(tmp_path)
    with pytest.raises(UserError, match=r"^the new kubeconfig is not a kubeconfig \(users\[0\]\.user: must be a "):
        kubeconfig.merge(path, b"users: [{name: z, user: [token]}]\n")


def test_current_picks_a_named_context_and_names_what_is_missing(tmp_path):
    conf = kubeconfig.load(mine(tmp_path).read_text(), "k")
    assert kubeconfig.current(conf, "k").cluster == {"server": "https://b:6443"}
    chosen = kubeconfig.current(conf, "k", context="a")
    assert (chosen.cluster_name, chosen.user_name, chosen.user) == ("a", "a", {"token": "a-token-value"})
    with pytest.raises(UserError, match=r"^k: no context named 'nope'$"):
        kubeconfig.current(conf, "k", context="nope")


def test_cluster_info_reads_back_and_refuses_what_kubeadm_would():
    info = kubeconfig.cluster_info("https://[fd00::1]:6443", b"CA")
    assert kubeconfig.read_cluster_info(info) == ("https://[fd00::1]:6443", "Q0E=")
    two = yaml.safe_load(info)
    two["clusters"] *= 2
    with pytest.raises(ValueError, match="names 2 clusters"):
        kubeconfig.read_cluster_info(yaml.safe_dump(two))
    with pytest.raises(ValueError, match="no usable kubeconfig"):
        kubeconfig.read_cluster_info(info.replace("Q0E=", "!!"))


def test_only_kubeinit_kubeconfig_builds_or_merges_kubeconfig_documents():
    """Issue 9 item 3: one module; providers do not import managed/'s (a layer above them)."""
    built = [
        str(p.relative_to(KUBEINIT))
        for p in KUBEINIT.rglob("*.py")
        if p.name != "kubeconfig.py" or p.parent != KUBEINIT
        if re.search(r'"kind": "Config"|kind: Config', p.read_text())
    ]
    assert built == []
    upward = [
        p.name
        for p in (KUBEINIT / "providers").glob("*.py")
        if re.search(r"kubeinit\.managed\.kubeconfig|from kubeinit\.managed import .*kubeconfig", p.read_text())
    ]
    assert upward == [] and not (KUBEINIT / "managed" / "kubeconfig.py").exists()
