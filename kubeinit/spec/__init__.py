"""The cluster spec: one loader for every cluster file, and the frozen values it returns.

A cluster file is `apiVersion: kubeinit.dev/v1alpha1`, `kind: Cluster` (with `hosts`, or a
`managed:` cloud cluster), or kubeadm's `kubeadm.k8s.io/v1beta4` InitConfiguration +
ClusterConfiguration documents (the fields the two share). Every error is a SpecError carrying
the YAML path, so the user reads one line like
`hosts[2].role: "master" is not one of control-plane, worker`.

model (the values), reader (YAML and paths), read (the loader), sections (artifacts, containerd),
kubeadm (v1beta4 translation), validate (read-only checks), containerd (checks against its
version), overrides (flags over the file).
"""

from kubeinit.errors import SpecError, UserError

from .model import (
    API_VERSION,
    COMPONENTS,
    DEFAULT_ARTIFACTS,
    DEFAULT_VERSION,
    KEY_ALGORITHMS,
    KUBEADM_API,
    KUBERNETES_BINARIES,
    ROLES,
    SUPPORTED_MINORS,
    Artifact,
    Artifacts,
    ClusterSpec,
    ContainerdSettings,
    Host,
    ImageArchive,
    Networking,
    PKIOptions,
    RuntimeSettings,
    SSHOptions,
)
from .overrides import Overrides, apply_overrides, local_default
from .read import from_dict, load_documents, load_file
from .reader import read_documents
from .validate import validate

__all__ = [  # the cluster spec's public face, used across kubeinit
    "API_VERSION",
    "COMPONENTS",
    "DEFAULT_ARTIFACTS",
    "DEFAULT_VERSION",
    "KEY_ALGORITHMS",
    "KUBEADM_API",
    "KUBERNETES_BINARIES",
    "ROLES",
    "SUPPORTED_MINORS",
    "Artifact",
    "Artifacts",
    "ClusterSpec",
    "ContainerdSettings",
    "Host",
    "ImageArchive",
    "Networking",
    "PKIOptions",
    "RuntimeSettings",
    "SSHOptions",
    "Overrides",
    "SpecError",
    "UserError",
    "apply_overrides",
    "from_dict",
    "load_documents",
    "load_file",
    "local_default",
    "read_documents",
    "validate",
]
