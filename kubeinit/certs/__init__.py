"""kubeadm-compatible PKI as a pure library: bytes in, the files to write out.

    keys        private keys (RSA-2048/3072/4096, ECDSA-P256/P384) and their PEM forms
    certutil    x509 building, re-signing and checking, shared by the modules below
    pki         PKIConfig, kubeadm's certificate catalogue, plan_pki()
    kubeconfig  kubeadm's kubeconfig files, plan_kubeconfigs(), generic kubeconfig YAML
    tokens      bootstrap tokens and their kube-system Secret
    jws         detached JWS of the cluster-info ConfigMap
    pin         CA public-key pins (--discovery-token-ca-cert-hash), certificate key
    expiration  check-expiration and renew over a local cert dir (reads only; returns writes)

Nothing here writes files or talks to hosts: the phases turn the plans into uploads.
"""
