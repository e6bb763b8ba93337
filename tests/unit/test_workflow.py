"""The phase tree: kubeadm's names and order, selection, and honesty about what is not built."""

from __future__ import annotations

import pytest

from kubeinit import workflow
from kubeinit.errors import UserError


def paths(phases):
    return [p.path for p in phases]


def test_init_order_matches_kubeadm():
    tops = [p.name for p in workflow.init_phases()]
    assert tops == [
        "preflight",
        "certs",
        "kubeconfig",
        "etcd",
        "control-plane",
        "kubelet-start",
        "wait-control-plane",
        "upload-config",
        "upload-certs",
        "mark-control-plane",
        "bootstrap-token",
        "kubelet-finalize",
        "addon",
        "cni",
        "show-join-command",
    ]
    certs = workflow.find(workflow.init_phases(), "certs")
    assert [c.name for c in certs.children] == [
        "ca",
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-ca",
        "front-proxy-client",
        "etcd-ca",
        "etcd-server",
        "etcd-peer",
        "etcd-healthcheck-client",
        "apiserver-etcd-client",
        "sa",
    ]
    kc = workflow.find(workflow.init_phases(), "kubeconfig")
    assert [c.name for c in kc.children] == ["admin", "super-admin", "kubelet", "controller-manager", "scheduler"]


def test_skip_a_subtree_and_a_leaf():
    tree = workflow.init_phases()
    chosen = paths(workflow.select(tree, skip=["certs", "kubeconfig/super-admin,addon/kube-proxy"]))
    assert not any(p.startswith("certs/") for p in chosen)
    assert "kubeconfig/super-admin" not in chosen and "kubeconfig/admin" in chosen
    assert "addon/kube-proxy" not in chosen and "addon/coredns" in chosen
    assert chosen[0] == "preflight"


def test_only_keeps_tree_order():
    tree = workflow.init_phases()
    assert paths(workflow.select(tree, only=["kubeconfig/admin", "certs/ca"])) == ["certs/ca", "kubeconfig/admin"]


def test_unknown_phase_is_an_error_not_ignored():
    with pytest.raises(UserError, match="'certs/nope' is not a phase"):
        workflow.select(workflow.init_phases(), skip=["certs/nope"])


def test_every_built_phase_loads_its_implementation():
    from kubeinit.phases import PhaseImpl

    for tree in (workflow.init_phases(), workflow.join_phases(), workflow.up_phases(), workflow.reset_phases()):
        for leaf in (leaf for p in tree for leaf in p.leaves()):
            if leaf.plan is not None:
                assert isinstance(leaf.impl(), PhaseImpl) and callable(leaf.impl().plan), leaf.path


def test_a_reference_to_something_not_a_phase_is_refused():
    ref = workflow.Ref("certs", lambda m: m.pki_config)
    with pytest.raises(TypeError, match="not a PhaseImpl"):
        ref.load()


def test_up_tree_has_host_preparation_first():
    assert [p.name for p in workflow.up_phases()][:2] == ["preflight", "runtime"]
