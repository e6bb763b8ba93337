"""EKS's IAM roles: the cluster's and the nodes', made with their AWS managed policies; found and deleted."""

from __future__ import annotations

import json

from kubeinit.providers.base import TAG, unless_missing

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)


class EKSIam:
    """The IAM part of the EKS provider (a mixin, as EKSNetwork)."""

    def _role(self, ctx, which, principal, policies):
        s, iam = ctx.spec, ctx.api("iam")
        role = f"kubeinit-{s.name}-{which}"
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": principal}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
            ],
        }
        entry = ctx.ensure(
            "iam_role",
            which,
            f"IAM role {role}",
            lambda: (
                role,
                {
                    "arn": iam.create_role(
                        RoleName=role,
                        AssumeRolePolicyDocument=json.dumps(trust),
                        Tags=self._tag_list(s),
                        Description=f"kubeinit: {which} role of EKS cluster {s.name}",
                    )["Role"]["Arn"]
                },
            ),
        )
        with ctx.step(f"attaching policies to IAM role {role}"):
            for policy in policies:  # idempotent, so a resumed run simply repeats it
                iam.attach_role_policy(RoleName=role, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        return entry["data"]["arn"]

    def find_iam_role(self, ctx, e):
        role = f"kubeinit-{ctx.spec.name}-{e['name']}"
        r = unless_missing(lambda: ctx.api("iam").get_role(RoleName=role)["Role"])
        if r is None:
            return None
        tags = {t["Key"]: t["Value"] for t in r.get("Tags", [])}
        return (role, {"arn": r["Arn"]}) if tags.get(TAG) == ctx.spec.name else None

    def delete_iam_role(self, ctx, e):
        iam = ctx.api("iam")
        for p in iam.list_attached_role_policies(RoleName=e["id"])["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=e["id"], PolicyArn=p["PolicyArn"])
        iam.delete_role(RoleName=e["id"])
