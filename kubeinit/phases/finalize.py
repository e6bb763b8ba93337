"""kubelet-finalize/enable-client-cert-rotation, as kubeadm's: once the kubelet keeps its own
rotating client certificate (/var/lib/kubelet/pki/kubelet-client-current.pem), kubelet.conf names
that file instead of embedding the certificate init made, so the kubelet keeps working after the
first one expires. The kubelet reads kubelet.conf when it starts: it is restarted on the new file
(and kubelet-start's record of what it runs updated, so a re-run does not restart it again).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from kubeinit import kubeconfig as kc
from kubeinit.context import Context, Target, ensure_file
from kubeinit.facts import files
from kubeinit.phases import PhaseImpl, kubelet
from kubeinit.redact import Secret
from kubeinit.steps import Run, Skip, Step, Upload

CURRENT = "/var/lib/kubelet/pki/kubelet-client-current.pem"


def pointed(text: bytes, what: str) -> dict | None:
    """kubelet.conf with its user's certificate and key read from CURRENT; None when it already is."""
    conf = kc.load(text, what)
    name = kc.current(conf, what).user_name
    out = copy.deepcopy(conf)
    for entry in out.get("users") or []:
        if entry.get("name") == name:
            user = entry.setdefault("user", {})
            if user.get("client-certificate") == CURRENT and user.get("client-key") == CURRENT:
                return None
            for k in ("client-certificate-data", "client-key-data"):
                user.pop(k, None)
            user["client-certificate"], user["client-key"] = CURRENT, CURRENT
    return out


def plan_finalize(ctx: Context, target: Target) -> Iterator[Step]:
    path = kubelet.kubeconfig(ctx)
    facts = target.facts
    if facts.file(CURRENT) is None:
        yield Skip(f"the kubelet has no rotated client certificate yet ({CURRENT}); kubelet.conf stays as it is")
        return
    text = facts.read(path)
    if text is None:
        yield Skip(f"no {path} to point at {CURRENT}")
        return
    new = pointed(text, f"{target.name}:{path}")
    if new is None:
        yield Skip(f"{path} uses the rotating client certificate {CURRENT}")
        return
    changed = False
    for step in ensure_file(target, path, Secret(kc.dump(new)), 0o600, f"kubelet.conf -> {CURRENT}"):
        changed = changed or isinstance(step, Upload)
        yield step
    if changed:
        found = facts.get(kubelet.KUBELET)
        binary = found.path if found else kubelet.OURS
        kubeconfigs = [k for k in (path, kubelet.bootstrap_kubeconfig(ctx)) if facts.file(k) is not None]
        watched = [kubelet.CONFIG, kubelet.FLAGS_ENV, kubelet.UNIT, kubelet.DROPIN, *kubeconfigs]
        yield Run(
            ("sh", "-c", kubelet.restart_script(binary, watched)),
            timeout=kubelet.SETTLE_SECONDS + 60,
            note="restart the kubelet on the new kubelet.conf",
        )


def facts(ctx: Context, target: Target) -> list:
    return [*kubelet.facts(ctx, target), *files([CURRENT])]


ENABLE_CLIENT_CERT_ROTATION = PhaseImpl(plan_finalize, facts)
