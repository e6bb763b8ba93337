"""kubeadm-compatible PKI as a pure library: bytes in, the files to write out.

    keys        private keys (RSA-2048/3072/4096, ECDSA-P256/P384) and their PEM forms
    certutil    x509 building, re-signing and checking, shared by the modules below
    addresses   IPs, DNS-1123 names, host:port and the service IP, as kubeadm parses them
    catalogue   PKIConfig, kubeadm's certificate catalogue, each certificate's subject and SANs
    pki         plan_pki(): the certificate files to write or reuse
    kubeconfig  kubeadm's kubeconfig files and their client certs, plan_kubeconfigs()
                (the YAML document is kubeinit.kubeconfig's)
    tokens      bootstrap tokens (their kube-system Secret: kubeinit.kube.bootstraptoken)
    jws         detached JWS of the cluster-info ConfigMap
    pin         CA public-key pins (--discovery-token-ca-cert-hash), certificate key
    expiration  check-expiration and renew over a local cert dir (reads only; returns writes)

Nothing here writes files or talks to hosts: the phases turn the plans into uploads.
"""
