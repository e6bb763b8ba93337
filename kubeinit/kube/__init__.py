"""Talking to a running cluster's API server.

    client          a minimal Kubernetes REST client (standard library only) built from a kubeconfig
    access          a kubeconfig read into the server, TLS context and credentials a client uses
    bootstraptoken  kubeadm's bootstrap-token Secret, and the token record read back from one

Imported only by the commands that need a cluster, never at `kubeinit --help` time.
"""
