"""The command line: thin commands over spec, workflow and the executor.

Keep imports here light: `kubeinit --help` must not load paramiko, the PKI
code or any cloud SDK. Heavy modules are imported inside the commands.
"""



import os
import sys
from pathlib import Path
from typing import List, Optional

import click

from kubeinit import ui, workflow
from kubeinit.commands.base import Argument, Command, Group, as_list, ask_first, comma_list, options
from kubeinit.errors import KubeinitError, NotAvailableYet, UserError

_state = {"verbose": False}


@click.group(
    name="kubeinit",
    cls=Group,
    help="Turn plain Linux hosts into a Kubernetes cluster (kubeadm-compatible), or create one in a cloud.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and more detail.")
def app(verbose: bool):
    _state["verbose"] = verbose


def _group(parent: Group, name: str, help: str) -> Group:
    """A sub-command group with no options of its own; without a sub-command it prints its help."""
    group = Group(name, help=help, no_args_is_help=True)
    parent.add_command(group)
    return group


# --------------------------------------------------------------------------
# Shared options (kubeadm's flag names)

ConfigOpt = click.option("--config", type=click.Path(path_type=Path),
                         help="A cluster file (kubeinit Cluster, or kubeadm v1beta4 documents).")
AdvertiseOpt = click.option("--apiserver-advertise-address",
                            help="The address the API server advertises (default: the default-route interface's).")
EndpointOpt = click.option("--control-plane-endpoint", help="A stable host[:port] for the control plane.")
NodeNameOpt = click.option("--node-name", help="This node's name (default: the host name).")
VersionOpt = click.option("--kubernetes-version", help="The Kubernetes version, e.g. v1.34.2.")
PodCidrOpt = click.option("--pod-network-cidr", help="The pods' IP range.")
SvcCidrOpt = click.option("--service-cidr", help="The services' IP range (default 10.96.0.0/12).")
CertDirOpt = click.option("--cert-dir", help="Where certificates go (default /etc/kubernetes/pki).")
KubeconfigDirOpt = click.option("--kubeconfig-dir", help="Where kubeconfig files go (default /etc/kubernetes).")
ExtraSansOpt = click.option("--apiserver-cert-extra-sans", multiple=True, callback=comma_list,
                            help="Extra SANs for the API server certificate.")
DryRunOpt = click.option("--dry-run", is_flag=True, help="Print the plan (phases, hosts, steps) and change nothing.")
IgnoreOpt = click.option("--ignore-preflight-errors", multiple=True, callback=comma_list,
                         help="Preflight checks to show as warnings (or 'all').")
SkipOpt = click.option("--skip-phases", multiple=True, callback=comma_list,
                       help="Phases to skip, e.g. addon/kube-proxy,cni.")


def _load_local_spec(config, advertise, endpoint, node_name, version, pod_cidr, svc_cidr, cert_dir,
                     kubeconfig_dir, extra_sans):
    from kubeinit import spec as specmod

    s = specmod.load_file(config) if config else specmod.local_default()
    o = specmod.Overrides(advertise, endpoint, node_name, version, pod_cidr, svc_cidr, cert_dir, kubeconfig_dir,
                          extra_sans or None)
    return specmod.apply_overrides(s, o, local=True)


def _ignore_set(values: Optional[List[str]]) -> frozenset[str]:
    return frozenset(x.lower() for x in values or [])


def _run_local(command: str, tree, phases, spec, dry_run: bool, ignore: frozenset[str], resume) -> None:
    from kubeinit.apply import execute
    from kubeinit.connection import LocalConnection
    from kubeinit.context import Context, Options, Target

    host = spec.hosts[0]
    ctx = Context(spec, [Target(host, lambda h: LocalConnection(h.name))],
                  Options(dry_run=dry_run, ignore_preflight_errors=ignore, resume=resume))
    if not dry_run:  # the host's lock, as `up` takes it over SSH; a run on the host itself waits a while
        from kubeinit import hostlock

        info = hostlock.holder_line(command, spec.name)
        ctx.targets[0].locker = lambda conn, since: hostlock.acquire(conn, info, hostlock.LOCAL_WAIT, since)
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

InitOptions = options(ConfigOpt, AdvertiseOpt, EndpointOpt, NodeNameOpt, VersionOpt, PodCidrOpt, SvcCidrOpt,
                      CertDirOpt, KubeconfigDirOpt, ExtraSansOpt, SkipOpt, IgnoreOpt, DryRunOpt)


def _init_command(phase_path: str | None):
    """One function serves `init` itself and every `init phase <path>` command."""

    @click.pass_context
    def command(
        ctx: click.Context,
        config: Optional[Path],
        apiserver_advertise_address: Optional[str],
        control_plane_endpoint: Optional[str],
        node_name: Optional[str],
        kubernetes_version: Optional[str],
        pod_network_cidr: Optional[str],
        service_cidr: Optional[str],
        cert_dir: Optional[str],
        kubeconfig_dir: Optional[str],
        apiserver_cert_extra_sans: Optional[List[str]],
        skip_phases: Optional[List[str]],
        ignore_preflight_errors: Optional[List[str]],
        dry_run: bool,
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


init_app = app.group("init", help="Set up a Kubernetes control plane on this host (kubeadm init's phases).",
                     invoke_without_command=True, no_args_is_help=False)(InitOptions(_init_command(None)))
phase_app = _group(init_app, "phase", help="Run one phase (or a group of phases) of init.")


def _phase_help(p: workflow.Phase) -> str:
    return p.help + ("" if p.available else " (not available yet)")


def _phase_command(name: str, help: str, phase_path: str) -> Command:
    # The phase commands share init's option objects (click keeps no state in them): making 13
    # options for each of some 40 phase commands would cost ~5 ms on every start of kubeinit.
    return Command(name, help=help, callback=_init_command(phase_path), params=list(init_app.params))


def _register_phases(parent: Group, phases: list[workflow.Phase]) -> None:
    for p in phases:
        if not p.children:
            parent.add_command(_phase_command(p.name, _phase_help(p), p.path))
            continue
        group = _group(parent, p.name, help=_phase_help(p))
        group.add_command(_phase_command("all", f"Run every phase under {p.name}.", p.path))
        _register_phases(group, p.children)


_register_phases(phase_app, workflow.init_phases())


# --------------------------------------------------------------------------
# join, upgrade: in the tree, planned, not built yet; reset


@app.command()
@click.argument("api_server_endpoint", cls=Argument, required=False, help="host:port of the API server.")
@click.option("--token", help="The bootstrap token (kept secret).")
@click.option("--discovery-token-ca-cert-hash", multiple=True, callback=as_list)
@click.option("--control-plane", is_flag=True)
@SkipOpt
@DryRunOpt
def join(
    api_server_endpoint: Optional[str],
    token: Optional[str],
    discovery_token_ca_cert_hash: Optional[List[str]],
    control_plane: bool,
    skip_phases: Optional[List[str]],
    dry_run: bool,
):
    """Join this host to a cluster (kubeadm join's phases)."""
    phases = workflow.select(workflow.join_phases(), None, skip_phases)
    if dry_run:
        ui.heading("kubeinit join --dry-run: the phases a join runs; nothing will be changed")
        for p in phases:
            ui.out(f"[{p.path}]" + ("" if p.plan else " (not available yet)"))
        return
    raise NotAvailableYet("kubeinit join (use `kubeinit up -f cluster.yaml` from a workstation)")


RESET_REMOVES = ("etcd (stopped, disabled, its unit and data), the certificates and keys, the kubeconfig files, "
                 "the static pod manifests and /var/lib/kubelet")


def _confirm_reset(yes: bool, hosts: list[str]) -> None:
    """Ask before a destructive reset, as `delete cluster` does: refuse when there is no terminal."""
    if yes:
        return
    what = ", ".join(hosts)
    ask_first("resetting", what, f"Reset {what}? This removes {RESET_REMOVES}; the container runtime stays.",
              "nothing was reset")


@app.command()
@click.option("--file", "-f", "file", type=click.Path(path_type=Path),
              help="A cluster file: reset every host in it, over SSH (default: this host).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@ConfigOpt
@CertDirOpt
@KubeconfigDirOpt
@click.option("--trust-new-host-keys", is_flag=True, help="With -f: accept and record host keys not yet in known_hosts.")
@click.option("--known-hosts", type=click.Path(path_type=Path),
              help="With -f: known_hosts file (default ~/.ssh/known_hosts).")
@click.option("--parallel", type=click.IntRange(min=1), default=10, help="With -f: hosts worked at once.")
@DryRunOpt
def reset(file: Optional[Path], yes: bool, config: Optional[Path], cert_dir: Optional[str],
          kubeconfig_dir: Optional[str], trust_new_host_keys: bool, known_hosts: Optional[Path], parallel: int,
          dry_run: bool):
    """Undo what init or up did on this host (or, with -f, on every host of a cluster file): stop etcd and
    remove the certificates, kubeconfig files, manifests and data. The container runtime stays."""
    tree = workflow.reset_phases()
    if file is not None:
        if config or cert_dir or kubeconfig_dir:
            raise UserError("with -f, the cluster file sets the cert and kubeconfig dirs; drop --config, "
                            "--cert-dir and --kubeconfig-dir")
        from kubeinit.up import run_up

        run_up(file, None, None, frozenset(), trust_new_host_keys, str(known_hosts) if known_hosts else None,
               parallel, dry_run, command="reset", tree=tree,
               confirm=lambda spec: _confirm_reset(yes, [h.name for h in spec.hosts]))
        return
    if trust_new_host_keys or known_hosts:
        raise UserError("--trust-new-host-keys and --known-hosts go with -f (a cluster file over SSH)")
    spec = _load_local_spec(config, None, None, None, None, None, None, cert_dir, kubeconfig_dir, None)
    if not dry_run:
        _confirm_reset(yes, [spec.hosts[0].name])
    again = "kubeinit reset --yes" + "".join(f" {k} {v}" for k, v in (("--config", config), ("--cert-dir", cert_dir),
                                                                     ("--kubeconfig-dir", kubeconfig_dir)) if v)
    _run_local("reset", tree, workflow.select(tree), spec, dry_run, frozenset(), lambda _p: again)


upgrade_app = _group(app, "upgrade", help="Upgrade a cluster (not available yet).")


@upgrade_app.command("plan")
def upgrade_plan():
    """Show the versions this cluster can be upgraded to."""
    raise NotAvailableYet("kubeinit upgrade plan")


@upgrade_app.command("apply")
@click.argument("version", cls=Argument)
def upgrade_apply(version: str):
    """Upgrade the control plane to VERSION."""
    raise NotAvailableYet("kubeinit upgrade apply")


# --------------------------------------------------------------------------
# up: every host of a cluster file, over SSH


@app.command()
@click.option("--file", "-f", "--config", "file", type=click.Path(path_type=Path), required=True,
              help="The cluster file.")
@click.option("--only", multiple=True, callback=comma_list, help="Run only these phases, e.g. preflight,runtime.")
@SkipOpt
@IgnoreOpt
@click.option("--trust-new-host-keys", is_flag=True, help="Accept and record host keys not yet in known_hosts.")
@click.option("--known-hosts", type=click.Path(path_type=Path), help="known_hosts file (default ~/.ssh/known_hosts).")
@click.option("--parallel", type=click.IntRange(min=1), default=10, help="Hosts worked at once.")
@DryRunOpt
def up(
    file: Path,
    only: Optional[List[str]],
    skip_phases: Optional[List[str]],
    ignore_preflight_errors: Optional[List[str]],
    trust_new_host_keys: bool,
    known_hosts: Optional[Path],
    parallel: int,
    dry_run: bool,
):
    """Bring every host in the cluster file to the cluster it describes (over SSH, in parallel)."""
    from kubeinit.up import run_up

    run_up(file, only, skip_phases, _ignore_set(ignore_preflight_errors), trust_new_host_keys,
           str(known_hosts) if known_hosts else None, parallel, dry_run)


# --------------------------------------------------------------------------
# token


token_app = _group(app, "token", help="Bootstrap tokens.")


@token_app.command("generate")
def token_generate():
    """Print a new random bootstrap token (it is not created in any cluster)."""
    from kubeinit.certs.tokens import generate_token

    # The one place a token is printed on purpose: the user asked for it, to pass on.
    sys.stdout.write(generate_token() + "\n")


TokenKubeconfigOpt = click.option("--kubeconfig", default="/etc/kubernetes/admin.conf",
                                  help="The kubeconfig to reach the API server with (its server, CA and "
                                       "credentials).")


@token_app.command("create")
@click.argument("token", cls=Argument, required=False,
                help="The token to create, <6 of a-z0-9>.<16 of a-z0-9> (default: a new random one).")
@click.option("--ttl", default="24h0m0s", help="How long the token is valid, e.g. 2h30m; 0 = it never expires.")
@click.option("--usages", multiple=True, callback=comma_list,
              help="What the token may be used for: signing, authentication (comma-separated or repeated). "
                   "[default: signing,authentication]")
@click.option("--groups", multiple=True, callback=comma_list,
              help="Extra groups the token authenticates as, each system:bootstrappers:... (comma-separated or "
                   "repeated). [default: system:bootstrappers:kubeadm:default-node-token]")
@click.option("--description", help="A note kept with the token, shown by `token list`.")
@click.option("--print-join-command", is_flag=True,
              help="Print the whole `kubeinit join` command (with the CA pin) instead of the token alone.")
@TokenKubeconfigOpt
@click.option("--dry-run", is_flag=True, help="Show the Secret that would be created (its secret masked); send nothing.")
def token_create(token: Optional[str], ttl: str, usages: Optional[List[str]], groups: Optional[List[str]],
                 description: Optional[str], print_join_command: bool, kubeconfig: str, dry_run: bool):
    """Create a bootstrap token in the cluster and print it (the only command that prints a token secret)."""
    from kubeinit.commands import token as cmd

    cmd.create(token, ttl, usages, groups, description, print_join_command, kubeconfig, dry_run)


@token_app.command("list")
@TokenKubeconfigOpt
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", help="Output format.")
def token_list(kubeconfig: str, output: str):
    """List the cluster's bootstrap tokens. The secret half of each token is shown as abcdef.<redacted>:
    list output ends up in logs and tickets, and the ID is all `token delete` needs."""
    from kubeinit.commands import token as cmd

    cmd.list_tokens(kubeconfig, output)


@token_app.command("delete")
@click.argument("token", cls=Argument, nargs=-1, required=True, help="Token IDs (abcdef) or whole tokens.")
@TokenKubeconfigOpt
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; send nothing.")
def token_delete(token: tuple[str, ...], kubeconfig: str, yes: bool, dry_run: bool):
    """Delete bootstrap tokens from the cluster (asks first unless --yes)."""
    from kubeinit.commands import token as cmd

    cmd.delete(token, kubeconfig, yes, dry_run)


# --------------------------------------------------------------------------
# certs


certs_app = _group(app, "certs", help="Inspect and renew certificates.")


@certs_app.command("check-expiration")
@click.option("--cert-dir", type=click.Path(path_type=Path), default=Path("/etc/kubernetes/pki"))
@click.option("--kubeconfig-dir", type=click.Path(path_type=Path), default=Path("/etc/kubernetes"))
@click.option("--output", "-o", default="table", help="table or json")
def certs_check_expiration(cert_dir: Path, kubeconfig_dir: Path, output: str):
    """Show when each certificate and kubeconfig expires (kubeadm's table)."""
    from kubeinit.commands.certs import check_expiration

    if output not in ("table", "json"):
        raise UserError(f"--output {output!r} is not one of table, json")
    check_expiration(cert_dir, kubeconfig_dir, output)


@certs_app.command("renew")
@click.argument("name", cls=Argument, help="A certificate name (e.g. apiserver, admin.conf) or 'all'.")
@click.option("--cert-dir", type=click.Path(path_type=Path), default=Path("/etc/kubernetes/pki"))
@click.option("--kubeconfig-dir", type=click.Path(path_type=Path), default=Path("/etc/kubernetes"))
def certs_renew(name: str, cert_dir: Path, kubeconfig_dir: Path):
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


config_app = _group(app, "config", help="Cluster files.")
print_app = _group(config_app, "print", help="Print default configuration.")


@print_app.command("init-defaults")
def config_print_init_defaults():
    """Print a cluster file with every default filled in."""
    from kubeinit.commands.config import init_defaults

    ui.raw(init_defaults())


@config_app.command("validate")
@click.option("--config", "-f", type=click.Path(path_type=Path), required=True)
def config_validate(config: Path):
    """Validate a cluster file and say what is wrong, if anything."""
    from kubeinit import spec as specmod

    s = specmod.load_file(config, require=None)  # hosts or managed: whatever up or create cluster accepts
    ui.ok(f"{config}: valid ({s.summary()})")


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
        _main()
    except SystemExit as e:
        _leave(e.code)
    _leave(0)


def _main() -> None:
    # Nothing kubeinit writes is group- or world-writable, whatever umask it was started with
    # (the modes that matter are also set explicitly where each file is made).
    os.umask(os.umask(0o022) | 0o022)
    try:
        app.main(prog_name="kubeinit")
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


def _leave(code) -> None:
    """Exit without tearing the interpreter down: freeing every module costs ~30 ms, a tenth
    of a re-run of `up` on a converged cluster. Everything kubeinit writes is closed by now;
    exit handlers still run and the std streams are flushed. A live non-daemon thread (a
    cloud SDK's) gets Python's usual exit, which waits for it."""
    import atexit
    import threading

    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    code = 0 if code is None else code
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`kubeinit ... | head`) or stream
            pass
    os._exit(code)
