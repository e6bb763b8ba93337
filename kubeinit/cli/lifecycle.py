"""Cluster lifecycle: init (and `init phase ...`), join, up, reset; upgrade (upgrade.py) is registered here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubeinit import workflow
from kubeinit.errors import UserError

from . import help as helpmod
from . import upgrade
from .join import join
from .options import (
    CertDir,
    Config,
    DryRun,
    FileKnownHosts,
    FileParallel,
    FileTrustNewHostKeys,
    Ignore,
    KnownHosts,
    KubeconfigDir,
    Parallel,
    Skip,
    TrustNewHostKeys,
    Yes,
    comma_list,
    ignore_set,
    ssh,
)


def _str(flag: str, help: str) -> typer.models.OptionInfo:
    return typer.Option(flag, help=help, show_default=False)


Advertise = Annotated[
    str | None,
    _str(
        "--apiserver-advertise-address",
        "The address the API server advertises (default: the default-route interface's).",
    ),
]
Endpoint = Annotated[str | None, _str("--control-plane-endpoint", "A stable host[:port] for the control plane.")]
NodeName = Annotated[str | None, _str("--node-name", "This node's name (default: the host name).")]
Version = Annotated[str | None, _str("--kubernetes-version", "The Kubernetes version, e.g. v1.34.2.")]
PodCidr = Annotated[str | None, _str("--pod-network-cidr", "The pods' IP range.")]
SvcCidr = Annotated[str | None, _str("--service-cidr", "The services' IP range (default 10.96.0.0/12).")]
ExtraSans = Annotated[
    list[str] | None,
    typer.Option(
        "--apiserver-cert-extra-sans",
        callback=comma_list,
        show_default=False,
        help="Extra SANs for the API server certificate.",
    ),
]


UploadCerts = Annotated[
    bool, typer.Option("--upload-certs", help="Store the shared CAs and keys, encrypted, in Secret kubeadm-certs.")
]
CertificateKey = Annotated[
    str | None, _str("--certificate-key", "The key (64 hex characters) --upload-certs encrypts with (default: new).")
]


def _local_spec(
    config,
    advertise=None,
    endpoint=None,
    node_name=None,
    version=None,
    pod_cidr=None,
    svc_cidr=None,
    cert_dir=None,
    kubeconfig_dir=None,
    extra_sans=None,
):
    from kubeinit import spec as specmod

    s = specmod.load_file(config) if config else specmod.local_default()
    o = specmod.Overrides(
        advertise, endpoint, node_name, version, pod_cidr, svc_cidr, cert_dir, kubeconfig_dir, extra_sans or None
    )
    return specmod.apply_overrides(s, o, local=True)


def _local_run(command: str, spec, phases, resume: str, dry_run: bool, ignore=frozenset(), confirm=None, **run) -> None:
    """`run`: the Run's other fields (whole, shared)."""
    from kubeinit.runner import Run, run_workflow, skip_hint

    run_workflow(Run(command, spec, phases, lambda _p: resume, skip_hint, dry_run, ignore, None, confirm, **run))


# --------------------------------------------------------------------------
# init, and `init phase <path>` (built from the phase tree when asked for)


def run_init(
    phase_path: str | None,
    config=None,
    apiserver_advertise_address=None,
    control_plane_endpoint=None,
    node_name=None,
    kubernetes_version=None,
    pod_network_cidr=None,
    service_cidr=None,
    cert_dir=None,
    kubeconfig_dir=None,
    apiserver_cert_extra_sans=None,
    skip_phases=None,
    ignore_preflight_errors=None,
    dry_run=False,
    upload_certs=False,
    certificate_key=None,
) -> None:
    """`init` itself (phase_path None) and every `init phase <path>` command."""
    from kubeinit.phases import upload_certs as uc

    upload = uc.request(upload_certs, certificate_key)
    spec = _local_spec(
        config,
        apiserver_advertise_address,
        control_plane_endpoint,
        node_name,
        kubernetes_version,
        pod_network_cidr,
        service_cidr,
        cert_dir,
        kubeconfig_dir,
        apiserver_cert_extra_sans,
    )
    phases = workflow.select(workflow.init_phases(), [phase_path] if phase_path else None, skip_phases)
    again = "kubeinit init" + (f" phase {phase_path.replace('/', ' ')}" if phase_path else "")
    _local_run(
        "init" if not phase_path else f"init phase {phase_path}",
        spec,
        phases,
        again,
        dry_run,
        ignore_set(ignore_preflight_errors),
        whole=phase_path is None,
        shared={uc.REQUEST: upload} if upload else {},
    )


init_app = typer.Typer(
    cls=helpmod.with_phases(helpmod.PanelGroup, "init", workflow.init_phases),
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)


@init_app.callback()
def init(
    ctx: typer.Context,
    config: Config = None,
    apiserver_advertise_address: Advertise = None,
    control_plane_endpoint: Endpoint = None,
    node_name: NodeName = None,
    kubernetes_version: Version = None,
    pod_network_cidr: PodCidr = None,
    service_cidr: SvcCidr = None,
    cert_dir: CertDir = None,
    kubeconfig_dir: KubeconfigDir = None,
    apiserver_cert_extra_sans: ExtraSans = None,
    skip_phases: Skip = None,
    ignore_preflight_errors: Ignore = None,
    dry_run: DryRun = False,
    upload_certs: UploadCerts = False,
    certificate_key: CertificateKey = None,
):
    """Set up a Kubernetes control plane on this host (kubeadm init's phases)."""
    if ctx.invoked_subcommand is not None:
        return  # `init phase …`: the sub-command does the work
    run_init(None, **ctx.params)


class InitPhases(helpmod.PhaseGroup):
    run_init = staticmethod(run_init)


init_app.add_typer(
    typer.Typer(cls=InitPhases, no_args_is_help=True, rich_markup_mode=None),
    name="phase",
    help="Run one phase (or a group of phases) of init.",
)


# --------------------------------------------------------------------------
# up: every host of a cluster file, over SSH


def up(
    file: Annotated[Path, typer.Option("--file", "-f", "--config", help="The cluster file.", show_default=False)],
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", callback=comma_list, show_default=False, help="Run only these phases, e.g. preflight,runtime."
        ),
    ] = None,
    skip_phases: Skip = None,
    ignore_preflight_errors: Ignore = None,
    trust_new_host_keys: TrustNewHostKeys = False,
    known_hosts: KnownHosts = None,
    parallel: Parallel = 10,
    dry_run: DryRun = False,
):
    """Bring every host in the cluster file to the cluster it describes (over SSH, in parallel)."""
    from kubeinit.runner import file_run, run_workflow

    run_workflow(
        file_run(
            "up",
            file,
            workflow.up_phases(),
            only,
            skip_phases,
            ssh(known_hosts, trust_new_host_keys, parallel),
            dry_run,
            ignore_set(ignore_preflight_errors),
        )
    )


# --------------------------------------------------------------------------
# reset: this host, or every host of a cluster file


RESET_REMOVES = (
    "etcd (stopped, disabled, its unit and data), the certificates and keys, the kubeconfig files, "
    "the static pod manifests and /var/lib/kubelet"
)


class _Network:
    """Whether reset's cleanup-network removes the pod network's leftovers: --clean-network, or
    the answer on a terminal (asked after the reset itself was confirmed)."""

    def __init__(self, clean: bool):
        self.clean = clean


def _confirm_reset(yes: bool, hosts: list[str], network: _Network) -> None:
    """Ask before a destructive reset, as `delete cluster` does: refuse when there is no terminal."""
    if yes:
        return
    from kubeinit.commands.base import ask_first

    what = ", ".join(hosts)
    ask_first(
        "resetting",
        what,
        f"Reset {what}? This removes {RESET_REMOVES}; the container runtime stays.",
        "nothing was reset",
    )
    if not network.clean:
        network.clean = typer.confirm(
            "Also remove the pod network's leftovers (the CNI config, kubeinit's routes, kube-proxy's and the "
            "CNI's iptables chains and nftables tables)?",
            default=False,
        )


def reset(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            show_default=False,
            help="A cluster file: reset every host in it, over SSH (default: this host).",
        ),
    ] = None,
    yes: Yes = False,
    config: Config = None,
    cert_dir: CertDir = None,
    kubeconfig_dir: KubeconfigDir = None,
    trust_new_host_keys: FileTrustNewHostKeys = False,
    known_hosts: FileKnownHosts = None,
    parallel: FileParallel = 10,
    dry_run: DryRun = False,
    clean_network: Annotated[
        bool,
        typer.Option(
            "--clean-network",
            help="Also remove the CNI config, kubeinit's routes and kube-proxy's and the CNI's iptables chains "
            "and nftables tables (asked on a terminal; otherwise reset names what remains).",
        ),
    ] = False,
):
    """Undo what init or up did on this host (or, with -f, on every host of a cluster file): stop etcd and
    remove the certificates, kubeconfig files, manifests and data. The container runtime stays."""
    from kubeinit.runner import file_run, run_workflow

    network = _Network(clean_network)
    tree = workflow.reset_phases(lambda: network.clean)
    if file is not None:
        if config or cert_dir or kubeconfig_dir:
            raise UserError(
                "with -f, the cluster file sets the cert and kubeconfig dirs; drop --config, "
                "--cert-dir and --kubeconfig-dir"
            )
        run_workflow(
            file_run(
                "reset",
                file,
                tree,
                None,
                None,
                ssh(known_hosts, trust_new_host_keys, parallel),
                dry_run,
                confirm=lambda spec: _confirm_reset(yes, [h.name for h in spec.hosts], network),
            )
        )
        return
    if trust_new_host_keys or known_hosts:
        raise UserError("--trust-new-host-keys and --known-hosts go with -f (a cluster file over SSH)")
    spec = _local_spec(config, cert_dir=cert_dir, kubeconfig_dir=kubeconfig_dir)
    again = (
        "kubeinit reset --yes"
        + " --clean-network" * clean_network
        + "".join(
            f" {k} {v}"
            for k, v in (("--config", config), ("--cert-dir", cert_dir), ("--kubeconfig-dir", kubeconfig_dir))
            if v
        )
    )
    _local_run(
        "reset",
        spec,
        workflow.select(tree),
        again,
        dry_run,
        confirm=lambda spec: _confirm_reset(yes, [spec.hosts[0].name], network),
    )


def register(app: typer.Typer) -> None:
    panel = helpmod.LIFECYCLE
    app.add_typer(init_app, name="init", rich_help_panel=panel)
    app.command(rich_help_panel=panel)(join)
    app.command(rich_help_panel=panel, cls=helpmod.with_phases(helpmod.PhaseTreeCommand, "up", workflow.up_phases))(up)
    app.command(rich_help_panel=panel)(reset)
    app.add_typer(upgrade.upgrade_app, name="upgrade", help=upgrade.HELP, rich_help_panel=panel)
