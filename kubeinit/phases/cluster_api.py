"""The init phases that talk to the new cluster's API server, as kubeadm's do:

wait-control-plane   wait until the API server answers /readyz (kubeadm waits 4 minutes)
mark-control-plane   kubeadm's labels and NoSchedule taint on the control-plane node, once it registers
upload-config/kubeadm  ConfigMap kube-system/kubeadm-config (ClusterConfiguration) and the RBAC
                     that lets joining nodes read it (§4.8)
upload-config/kubelet  ConfigMap kube-system/kubelet-config (the KubeletConfiguration) and its RBAC
bootstrap-token      the RBAC of TLS bootstrap (§4.3) and kube-public/cluster-info with its
                     anonymous read (§4.4); the token itself comes with join (or `token create`)

The server is reached through the host's connection (Context.kube). The first phase but the wait
yields a step that makes admin.conf a cluster admin unless it is one (kube/admins.py: kubeadm's
ClusterRoleBinding kubeadm:cluster-admins, made with super-admin.conf when admin.conf is refused;
until then the objects are shown as they would be written). A plan reads what
the cluster holds (its facts) and yields an ApiCall only for what differs, so a re-run only skips.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence

import yaml

from kubeinit import kubeconfig
from kubeinit.context import Context, Target
from kubeinit.facts import Unknown
from kubeinit.kube import admins, objects
from kubeinit.kube.client import Unreachable
from kubeinit.phases import PhaseImpl, kubelet
from kubeinit.steps import ApiCall, Notice, Skip, Step

Adopt = Callable[[dict, dict | None], dict]
READY_SECONDS = 240  # kubeadm's ControlPlaneComponentHealthCheck
BOOTSTRAPPERS = "system:bootstrappers:kubeadm:default-node-token"
NODES = "system:nodes"
POD_NETWORK = "kubeinit.dev/pod-network"  # annotation of kubeadm-config: networking.cni


def plan_wait(ctx: Context, target: Target) -> Iterator[Step]:
    # the kubelet runs the API server: if it exits meanwhile, stop with its error, not after 4 minutes
    yield ApiCall(
        "wait",
        "/readyz",
        timeout=READY_SECONDS,
        watch="kubelet",
        note=f"the API server answers /readyz (up to {READY_SECONDS} s)",
    )


CONTROL_PLANE_LABELS = {
    "node-role.kubernetes.io/control-plane": "",
    "node.kubernetes.io/exclude-from-external-load-balancers": "",
}
CONTROL_PLANE_TAINTS = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]


def plan_mark_control_plane(ctx: Context, target: Target) -> Iterator[Step]:
    """kubeadm's labels and taint on the control-plane node (the node name is the host's name)."""
    path = f"/api/v1/nodes/{target.host.name}"
    got = yield from _read(ctx, target, [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": target.host.name}}])
    if isinstance(got, Unknown):
        if isinstance(got.error, admins.NotAuthorized):
            yield Notice(str(got))
        got = [None]
    node = got[0]
    if objects.node_marked(node, CONTROL_PLANE_LABELS, CONTROL_PLANE_TAINTS):
        yield Skip(f"node {target.host.name} has the control-plane labels and taint")
        return
    yield ApiCall(
        "mark",
        path,
        {"labels": CONTROL_PLANE_LABELS, "taints": CONTROL_PLANE_TAINTS},
        note="labels node-role.kubernetes.io/control-plane, exclude-from-external-load-balancers; taint "
        "node-role.kubernetes.io/control-plane:NoSchedule",
        timeout=READY_SECONDS,
        watch="kubelet",
    )


def plan_upload_kubeadm(ctx: Context, target: Target) -> Iterator[Step]:
    cm = configmap("kube-system", "kubeadm-config", {"ClusterConfiguration": cluster_configuration(ctx)})
    # a node joined with `kubeinit join` learns the pod network here (kubeadm's config has no field for it)
    cm["metadata"]["annotations"] = {POD_NETWORK: ctx.spec.networking.cni}
    yield from ensure(
        ctx,
        target,
        [
            cm,
            *reader(
                "kube-system",
                "kubeadm:nodes-kubeadm-config",
                "configmaps",
                "kubeadm-config",
                groups=[BOOTSTRAPPERS, NODES],
            ),
        ],
    )


def plan_upload_kubelet(ctx: Context, target: Target) -> Iterator[Step]:
    cm = configmap("kube-system", "kubelet-config", {"kubelet": kubelet.config_yaml(ctx, resolved_active=False)})
    yield from ensure(
        ctx,
        target,
        [
            cm,
            *reader(
                "kube-system", "kubeadm:kubelet-config", "configmaps", "kubelet-config", groups=[BOOTSTRAPPERS, NODES]
            ),
        ],
    )


def plan_bootstrap_token(ctx: Context, target: Target) -> Iterator[Step]:
    wanted = [
        cluster_binding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", BOOTSTRAPPERS),
        {
            "apiVersion": objects.RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": "kubeadm:get-nodes"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
        },
        cluster_binding("kubeadm:get-nodes", "kubeadm:get-nodes", BOOTSTRAPPERS),
        cluster_binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            BOOTSTRAPPERS,
        ),
        cluster_binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            NODES,
        ),
        configmap("kube-public", "cluster-info", {"kubeconfig": cluster_info(ctx, target)}),
        *reader(
            "kube-public",
            "kubeadm:bootstrap-signer-clusterinfo",
            "configmaps",
            "cluster-info",
            users=["system:anonymous"],
        ),
    ]
    yield from ensure(ctx, target, wanted)
    yield Notice(
        "no bootstrap token is made here: `kubeinit token create --print-join-command` on the control "
        "plane makes one (join will)"
    )


def ensure(ctx: Context, target: Target, wanted: list[dict], adopt: Adopt | None = None) -> Iterator[Step]:
    """An apply step for each wanted object the cluster does not hold as wanted, a Skip for the
    others. `adopt(wanted, cluster's copy or None)` may take over what the cluster owns once the
    object exists (CoreDNS's replicas, as kubeadm keeps them)."""
    have = yield from _read(ctx, target, wanted)
    if isinstance(have, Unknown):
        why = str(have) if isinstance(have.error, admins.NotAuthorized) else "the API server does not answer yet"
        yield Notice(f"{why}: every object is shown as it would be written")
        have = [None] * len(wanted)
    if adopt is not None:
        wanted = [adopt(obj, there) for obj, there in zip(wanted, have, strict=True)]
    for obj, there in zip(wanted, have, strict=True):
        if objects.matches(there, obj):
            yield Skip(f"{objects.label(obj)} is up to date")
        else:
            yield ApiCall("apply", objects.collection(obj), obj)


def _read(ctx: Context, target: Target, wanted: list[dict]) -> Generator[Step, None, list[dict | None] | Unknown]:
    """The cluster's copies of `wanted` (None where it has none), read as admin.conf; returned by
    `yield from`, after the step that makes admin.conf a cluster admin when it is not one yet
    (kube/admins.py: the ClusterRoleBinding kubeadm:cluster-admins, made with super-admin.conf when
    admin.conf is refused). Unknown when the server cannot be asked yet (Context.learn: a dry run
    before it runs) or admin.conf may not read until that step has run (admins.NotAuthorized)."""
    admitted = yield from admins.plan(ctx, target)
    if isinstance(admitted, Unknown):
        return admitted
    if admitted == admins.REFUSED:
        return Unknown(admins.refused(ctx.kube(target)))
    client = ctx.kube(target)
    return ctx.learn(lambda: [objects.get(client, obj) for obj in wanted], lambda e: isinstance(e, Unreachable))


def configmap(namespace: str, name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def reader(
    namespace: str,
    name: str,
    resource: str,
    resource_name: str,
    groups: Sequence[str] = (),
    users: Sequence[str] = (),
) -> list[dict]:
    """A Role allowing `get` of one object, and its RoleBinding (kubeadm names both alike)."""
    meta = {"name": name, "namespace": namespace}
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]
    subjects += [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users]
    return [
        {
            "apiVersion": objects.RBAC,
            "kind": "Role",
            "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": [resource], "resourceNames": [resource_name], "verbs": ["get"]}],
        },
        {
            "apiVersion": objects.RBAC,
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subjects,
        },
    ]


def cluster_binding(name: str, role: str, group: str) -> dict:
    return {
        "apiVersion": objects.RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


def cluster_info(ctx: Context, target: Target) -> str:
    """kube-public/cluster-info's kubeconfig: the server and CA of admin.conf's cluster, no users,
    in client-go's serialisation (the bootstrapsigner signs these exact bytes)."""
    admin = ctx.kube(target)  # admin.conf as the control plane has it, parsed once
    return kubeconfig.cluster_info(admin.server, admin.ca_pem or b"")


def cluster_configuration(ctx: Context) -> str:
    """kubeadm's ClusterConfiguration (v1beta4) for this cluster: what `kubeadm upgrade` and
    joining nodes read. kubeinit's etcd is a systemd service, which kubeadm calls external."""
    spec, net = ctx.spec, ctx.spec.networking
    cp = spec.first_control_plane
    etcd_host = f"[{cp.address}]" if ":" in cp.address else cp.address

    def args(component: str) -> dict:
        extra = spec.extra_args.get(component) or {}
        return {"extraArgs": [{"name": k, "value": v} for k, v in sorted(extra.items())]} if extra else {}

    cfg = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "apiServer": {**({"certSANs": list(spec.pki.cert_sans)} if spec.pki.cert_sans else {}), **args("apiServer")},
        "caCertificateValidityPeriod": f"{spec.pki.ca_validity_hours}h0m0s",
        "certificateValidityPeriod": f"{spec.pki.validity_hours}h0m0s",
        "certificatesDir": ctx.cert_dir,
        "clusterName": spec.name,
        **({"controlPlaneEndpoint": spec.control_plane_endpoint} if spec.control_plane_endpoint else {}),
        "controllerManager": args("controllerManager"),
        "dns": _dns_config(spec),
        "encryptionAlgorithm": spec.pki.algorithm,
        "etcd": {
            "external": {
                "endpoints": [f"https://{etcd_host}:2379"],
                "caFile": f"{ctx.cert_dir}/etcd/ca.crt",
                "certFile": f"{ctx.cert_dir}/apiserver-etcd-client.crt",
                "keyFile": f"{ctx.cert_dir}/apiserver-etcd-client.key",
            }
        },
        "imageRepository": spec.image_repository,
        "kubernetesVersion": spec.kubernetes_version,
        "networking": {
            "dnsDomain": net.dns_domain,
            "serviceSubnet": net.service_subnet,
            **({"podSubnet": net.pod_subnet} if net.pod_subnet else {}),
        },
        "proxy": {"disabled": True} if spec.proxy.disabled else {},
        "scheduler": args("scheduler"),
    }
    return yaml.safe_dump(cfg, sort_keys=False)


def _dns_config(spec) -> dict:
    d = spec.dns
    given = {"disabled": d.disabled, "imageRepository": d.image_repository, "imageTag": d.image_tag}
    return {k: v for k, v in given.items() if v}


WAIT = PhaseImpl(plan_wait)
UPLOAD_KUBEADM = PhaseImpl(plan_upload_kubeadm)
UPLOAD_KUBELET = PhaseImpl(plan_upload_kubelet)
MARK_CONTROL_PLANE = PhaseImpl(plan_mark_control_plane)
BOOTSTRAP_TOKEN = PhaseImpl(plan_bootstrap_token)
