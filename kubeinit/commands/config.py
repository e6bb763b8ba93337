"""`kubeinit config print init-defaults`: a complete cluster file to start from."""

from __future__ import annotations

from kubeinit import spec as specmod


def init_defaults() -> str:
    s = specmod.ClusterSpec()
    n, p = s.networking, s.pki
    arts = "\n".join(f'  {k}:\n    version: "{v}"' for k, v in specmod.DEFAULT_ARTIFACTS.items())
    return f"""\
apiVersion: {specmod.API_VERSION}
kind: Cluster
name: {s.name}
kubernetesVersion: {s.kubernetes_version}
# controlPlaneEndpoint: lb.example.com:6443   # required with more than one control plane
bindPort: {s.bind_port}
imageRepository: {s.image_repository}
networking:
  serviceSubnet: {n.service_subnet}
  podSubnet: {n.pod_subnet}
  dnsDomain: {n.dns_domain}
pki:
  keyAlgorithm: {p.algorithm}        # RSA-2048 | RSA-3072 | RSA-4096 | ECDSA-P256
  certificateValidity: {p.validity_hours}h
  caCertificateValidity: {p.ca_validity_hours}h
  certificatesDir: {p.cert_dir}
  certSANs: []
hosts:
  - name: cp1
    address: 192.0.2.10
    role: control-plane
    ssh: {{user: root, port: 22}}       # key: ~/.ssh/id_ed25519, bastion: user@jump:22
  - name: worker1
    address: 192.0.2.11
    role: worker
components:                         # extra flags per component, without leading dashes
  apiServer: {{extraArgs: {{}}}}
  controllerManager: {{extraArgs: {{}}}}
  scheduler: {{extraArgs: {{}}}}
  etcd: {{extraArgs: {{}}}}
  kubelet: {{extraArgs: {{}}}}
runtime:
  containerd:                       # CRI options kubeinit does not set itself (restart containerd on change)
    restrictOOMScoreAdj: false      # true on hosts that are containers (LXC, nspawn): no CAP_SYS_RESOURCE
    # sandboxImage: {s.image_repository}/pause:3.10
    registryMirrors: {{}}             # e.g. {{docker.io: [https://mirror.example.com]}}: certs.d hosts.toml
    # configPatch: |                # TOML merged over kubeinit's config.toml, in its version's layout
    #   [plugins."io.containerd.grpc.v1.cri"]
    #     max_container_log_line_size = 65536
proxy:                              # the kube-proxy addon
  disabled: false
  config: {{}}                        # KubeProxyConfiguration fields, e.g. {{mode: ipvs, conntrack: {{maxPerCore: 0}}}}
dns:                                # the CoreDNS addon (image: kubeadm's CoreDNS version for the minor)
  disabled: false
  # imageRepository: registry.example.com/k8s   # imageTag: v1.12.1
artifacts:
  # mirror: https://mirror.example.com/   # or a directory; replaces the upstream hosts
  allowInsecureMirror: false            # true: accept an http:// mirror (warned)
  allowUnlistedVersions: false          # true: versions outside kubeinit's checksum table use the published sha256
  images: []                            # image tarballs imported into containerd on every host (no registry):
  #   - {{name: registry.k8s.io/pause:3.10, path: bundle/pause.tar, sha256: <sha256sum of the file>}}
{arts}
"""
