"""The command line: thin commands over spec, workflow and the executor.

Keep imports here light: `kubeinit --help` must not load paramiko, the PKI
code or any cloud SDK. Heavy modules are imported inside the commands.
"""



import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from kubeinit import ui, workflow
from kubeinit.errors import KubeinitError, NotAvailableYet, UserError

def _typer(**kw) -> typer.Typer:
    # Plain help (no rich markup): it skips importing typer.rich_utils and markdown,
    # which is most of what `kubeinit --help` would otherwise cost.
    return typer.Typer(rich_markup_mode=None, **kw)


app = _typer(
    name="kubeinit",
    help="Turn plain Linux hosts into a Kubernetes cluster (kubeadm-compatible), or create one in a cloud.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"verbose": False}


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and more detail.")):
    _state["verbose"] = verbose


# --------------------------------------------------------------------------
# Shared options (kubeadm's flag names)

ConfigOpt = typer.Option(None, "--config", help="A cluster file (kubeinit Cluster, or kubeadm v1beta4 documents).")
AdvertiseOpt = typer.Option(None, "--apiserver-advertise-address",
                            help="The address the API server advertises (default: the default-route interface's).")
EndpointOpt = typer.Option(None, "--control-plane-endpoint", help="A stable host[:port] for the control plane.")
NodeNameOpt = typer.Option(None, "--node-name", help="This node's name (default: the host name).")
VersionOpt = typer.Option(None, "--kubernetes-version", help="The Kubernetes version, e.g. v1.34.2.")
PodCidrOpt = typer.Option(None, "--pod-network-cidr", help="The pods' IP range.")
SvcCidrOpt = typer.Option(None, "--service-cidr", help="The services' IP range (default 10.96.0.0/12).")
CertDirOpt = typer.Option(None, "--cert-dir", help="Where certificates go (default /etc/kubernetes/pki).")
KubeconfigDirOpt = typer.Option(None, "--kubeconfig-dir", help="Where kubeconfig files go (default /etc/kubernetes).")
ExtraSansOpt = typer.Option(None, "--apiserver-cert-extra-sans", help="Extra SANs for the API server certificate.")
DryRunOpt = typer.Option(False, "--dry-run", help="Print the plan (phases, hosts, steps) and change nothing.")
IgnoreOpt = typer.Option(None, "--ignore-preflight-errors", help="Preflight checks to show as warnings (or 'all').")
SkipOpt = typer.Option(None, "--skip-phases", help="Phases to skip, e.g. addon/kube-proxy,cni.")


def _load_local_spec(config, advertise, endpoint, node_name, version, pod_cidr, svc_cidr, cert_dir,
                     kubeconfig_dir, extra_sans):
    from kubeinit import spec as specmod

    s = specmod.load_file(config) if config else specmod.local_default()
    sans = [x.strip() for v in extra_sans or [] for x in v.split(",") if x.strip()]
    o = specmod.Overrides(advertise, endpoint, node_name, version, pod_cidr, svc_cidr, cert_dir, kubeconfig_dir,
                          sans or None)
    return specmod.apply_overrides(s, o, local=True)


def _ignore_set(values: Optional[List[str]]) -> frozenset[str]:
    return frozenset(x.strip().lower() for v in values or [] for x in v.split(",") if x.strip())


def _run_local(command: str, tree, phases, spec, dry_run: bool, ignore: frozenset[str], resume) -> None:
    from kubeinit.apply import execute
    from kubeinit.connection import LocalConnection
    from kubeinit.plan import Context, Options, Target

    host = spec.hosts[0]
    ctx = Context(spec, [Target(host, lambda h: LocalConnection(h.name))],
                  Options(dry_run=dry_run, ignore_preflight_errors=ignore, command=command, resume=resume))
    title = (f"kubeinit {command} --dry-run: the plan for cluster {spec.name!r} ({spec.kubernetes_version}) on "
             f"{host.name} ({host.address}); nothing will be changed" if dry_run else "")
    view = ui.RunView([host.name], dry_run=dry_run, title=title)
    try:
        summary = execute(ctx, phases, view)
    finally:
        view.close()
        ctx.close()
    if not dry_run:
        n = len(summary.phases)
        ui.ok(f"{command}: {n} phase{'s' if n != 1 else ''} done on {host.name} "
              f"({summary.total_changed} changed) in {summary.seconds:.1f}s")


# --------------------------------------------------------------------------
# init, and `init phase <path>` generated from the phase tree

init_app = _typer(help="Set up a Kubernetes control plane on this host (kubeadm init's phases).",
                       invoke_without_command=True, no_args_is_help=False)
phase_app = _typer(help="Run one phase (or a group of phases) of init.", no_args_is_help=True)
init_app.add_typer(phase_app, name="phase")
app.add_typer(init_app, name="init")


def _init_command(phase_path: str | None):
    """One function serves `init` itself and every `init phase <path>` command."""

    def command(
        ctx: typer.Context,
        config: Optional[Path] = ConfigOpt,
        apiserver_advertise_address: Optional[str] = AdvertiseOpt,
        control_plane_endpoint: Optional[str] = EndpointOpt,
        node_name: Optional[str] = NodeNameOpt,
        kubernetes_version: Optional[str] = VersionOpt,
        pod_network_cidr: Optional[str] = PodCidrOpt,
        service_cidr: Optional[str] = SvcCidrOpt,
        cert_dir: Optional[str] = CertDirOpt,
        kubeconfig_dir: Optional[str] = KubeconfigDirOpt,
        apiserver_cert_extra_sans: Optional[List[str]] = ExtraSansOpt,
        skip_phases: Optional[List[str]] = SkipOpt,
        ignore_preflight_errors: Optional[List[str]] = IgnoreOpt,
        dry_run: bool = DryRunOpt,
    ):
        if ctx.invoked_subcommand is not None:
            return  # `init phase …`: the sub-command does the work
        spec = _load_local_spec(config, apiserver_advertise_address, control_plane_endpoint, node_name,
                                kubernetes_version, pod_network_cidr, service_cidr, cert_dir, kubeconfig_dir,
                                apiserver_cert_extra_sans)
        tree = workflow.init_phases()
        phases = workflow.select(tree, [phase_path] if phase_path else None, skip_phases)
        again = "kubeinit init" + (f" phase {phase_path.replace('/', ' ')}" if phase_path else "")
        _run_local("init" if not phase_path else f"init phase {phase_path}", tree, phases, spec, dry_run,
                   _ignore_set(ignore_preflight_errors), lambda _p: again)

    return command


init_app.callback()(_init_command(None))


def _phase_help(p: workflow.Phase) -> str:
    return p.help + ("" if p.available else " (not available yet)")


def _register_phases(parent: typer.Typer, phases: list[workflow.Phase]) -> None:
    for p in phases:
        if not p.children:
            parent.command(p.name, help=_phase_help(p))(_init_command(p.path))
            continue
        group = _typer(help=_phase_help(p), no_args_is_help=True)
        group.command("all", help=f"Run every phase under {p.name}.")(_init_command(p.path))
        _register_phases(group, p.children)
        parent.add_typer(group, name=p.name)


_register_phases(phase_app, workflow.init_phases())


# --------------------------------------------------------------------------
# join, reset, upgrade: in the tree, planned, not built yet


@app.command()
def join(
    api_server_endpoint: Optional[str] = typer.Argument(None, help="host:port of the API server."),
    token: Optional[str] = typer.Option(None, "--token", help="The bootstrap token (kept secret)."),
    discovery_token_ca_cert_hash: Optional[List[str]] = typer.Option(None, "--discovery-token-ca-cert-hash"),
    control_plane: bool = typer.Option(False, "--control-plane"),
    skip_phases: Optional[List[str]] = SkipOpt,
    dry_run: bool = DryRunOpt,
):
    """Join this host to a cluster (kubeadm join's phases)."""
    phases = workflow.select(workflow.join_phases(), None, skip_phases)
    if dry_run:
        ui.heading("kubeinit join --dry-run: the phases a join runs; nothing will be changed")
        for p in phases:
            ui.out(f"[{p.path}]" + ("" if p.plan else " (not available yet)"))
        return
    raise NotAvailableYet("kubeinit join (use `kubeinit up -f cluster.yaml` from a workstation)")


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
          dry_run: bool = DryRunOpt):
    """Undo what init or join did on this host."""
    if dry_run:
        for p in workflow.select(workflow.reset_phases()):
            ui.out(f"[{p.path}]" + ("" if p.plan else " (not available yet)"))
        return
    raise NotAvailableYet("kubeinit reset")


upgrade_app = _typer(help="Upgrade a cluster (not available yet).", no_args_is_help=True)
app.add_typer(upgrade_app, name="upgrade")


@upgrade_app.command("plan")
def upgrade_plan():
    """Show the versions this cluster can be upgraded to."""
    raise NotAvailableYet("kubeinit upgrade plan")


@upgrade_app.command("apply")
def upgrade_apply(version: str = typer.Argument(...)):
    """Upgrade the control plane to VERSION."""
    raise NotAvailableYet("kubeinit upgrade apply")


# --------------------------------------------------------------------------
# up: every host of a cluster file, over SSH


@app.command()
def up(
    file: Path = typer.Option(..., "--file", "-f", "--config", help="The cluster file."),
    only: Optional[List[str]] = typer.Option(None, "--only", help="Run only these phases, e.g. preflight,runtime."),
    skip_phases: Optional[List[str]] = SkipOpt,
    ignore_preflight_errors: Optional[List[str]] = IgnoreOpt,
    trust_new_host_keys: bool = typer.Option(False, "--trust-new-host-keys",
                                             help="Accept and record host keys not yet in known_hosts."),
    known_hosts: Optional[Path] = typer.Option(None, "--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)."),
    parallel: int = typer.Option(10, "--parallel", min=1, help="Hosts worked at once."),
    dry_run: bool = DryRunOpt,
):
    """Bring every host in the cluster file to the cluster it describes (over SSH, in parallel)."""
    from kubeinit.up import run_up

    run_up(file, only, skip_phases, _ignore_set(ignore_preflight_errors), trust_new_host_keys,
           str(known_hosts) if known_hosts else None, parallel, dry_run)


# --------------------------------------------------------------------------
# token

token_app = _typer(help="Bootstrap tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("generate")
def token_generate():
    """Print a new random bootstrap token (it is not created in any cluster)."""
    from kubeinit.certs.tokens import generate_token

    # The one place a token is printed on purpose: the user asked for it, to pass on.
    sys.stdout.write(generate_token() + "\n")


@token_app.command("create")
def token_create():
    """Create a bootstrap token in the cluster."""
    raise NotAvailableYet("kubeinit token create (it needs a running API server)")


@token_app.command("list")
def token_list():
    """List the cluster's bootstrap tokens."""
    raise NotAvailableYet("kubeinit token list (it needs a running API server)")


@token_app.command("delete")
def token_delete(token: List[str] = typer.Argument(...)):
    """Delete bootstrap tokens from the cluster."""
    raise NotAvailableYet("kubeinit token delete (it needs a running API server)")


# --------------------------------------------------------------------------
# certs

certs_app = _typer(help="Inspect and renew certificates.", no_args_is_help=True)
app.add_typer(certs_app, name="certs")


@certs_app.command("check-expiration")
def certs_check_expiration(
    cert_dir: Path = typer.Option(Path("/etc/kubernetes/pki"), "--cert-dir"),
    kubeconfig_dir: Path = typer.Option(Path("/etc/kubernetes"), "--kubeconfig-dir"),
    output: str = typer.Option("table", "--output", "-o", help="table or json"),
):
    """Show when each certificate and kubeconfig expires (kubeadm's table)."""
    from kubeinit.commands.certs import check_expiration

    if output not in ("table", "json"):
        raise UserError(f"--output {output!r} is not one of table, json")
    check_expiration(cert_dir, kubeconfig_dir, output)


@certs_app.command("renew")
def certs_renew(
    name: str = typer.Argument(..., help="A certificate name (e.g. apiserver, admin.conf) or 'all'."),
    cert_dir: Path = typer.Option(Path("/etc/kubernetes/pki"), "--cert-dir"),
    kubeconfig_dir: Path = typer.Option(Path("/etc/kubernetes"), "--kubeconfig-dir"),
):
    """Renew a certificate with the same key and attributes (CAs are not renewable)."""
    from kubeinit.commands.certs import renew

    renew(cert_dir, kubeconfig_dir, name)


@certs_app.command("certificate-key")
def certs_certificate_key():
    """Print a new key for encrypting the shared certificates (upload-certs)."""
    from kubeinit.certs.pin import certificate_key

    sys.stdout.write(certificate_key() + "\n")


# --------------------------------------------------------------------------
# config

config_app = _typer(help="Cluster files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
print_app = _typer(help="Print default configuration.", no_args_is_help=True)
config_app.add_typer(print_app, name="print")


@print_app.command("init-defaults")
def config_print_init_defaults():
    """Print a cluster file with every default filled in."""
    from kubeinit.commands.config import init_defaults

    ui.raw(init_defaults())


@config_app.command("validate")
def config_validate(config: Path = typer.Option(..., "--config", "-f")):
    """Validate a cluster file and say what is wrong, if anything."""
    from kubeinit import spec as specmod

    s = specmod.load_file(config)
    ui.ok(f"{config}: valid ({len(s.hosts)} hosts, Kubernetes {s.kubernetes_version})")


@app.command()
def version():
    """Print kubeinit's version."""
    from kubeinit import __version__

    ui.out(f"kubeinit {__version__}")


def _register_managed() -> None:
    import importlib.util

    if importlib.util.find_spec("kubeinit.commands.managed") is None:
        return  # not built yet
    from kubeinit.commands import managed

    managed.register(app)


_register_managed()


def main() -> None:
    try:
        app(prog_name="kubeinit")
    except KubeinitError as e:
        if _state["verbose"]:
            import traceback

            traceback.print_exc()
        ui.error(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        ui.error("interrupted; kubeinit can be run again to finish the job.")
        sys.exit(130)
    except Exception as e:  # a bug: one line unless --verbose
        if _state["verbose"] or os.environ.get("KUBEINIT_DEBUG"):
            raise
        ui.error(f"internal error: {e.__class__.__name__}: {e} (run with --verbose for the traceback, and "
                 "please report it)")
        sys.exit(1)
