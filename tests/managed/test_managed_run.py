"""The dry-run placeholder: it can be passed on and read into, never decided on."""

from __future__ import annotations

import pytest

from kubeinit.managed.run import DryRunValueError, Placeholder


def test_placeholder_reads_and_writes_show_where_values_come_from():
    p = Placeholder("#3 ec2.create_vpc")
    assert repr(p["Vpc"]["VpcId"]) == "<Vpc.VpcId from #3 ec2.create_vpc>"
    assert f"{p.cluster.arn}" == "<cluster.arn from #3 ec2.create_vpc>"
    assert [repr(x) for x in p["nodegroups"]] == ["<nodegroups[*] from #3 ec2.create_vpc>"]
    assert repr(p["AvailabilityZones"][1]["ZoneName"]) == "<AvailabilityZones[1].ZoneName from #3 ec2.create_vpc>"
    p["properties"]["count"] = 3
    assert repr(p) == "<result of #3 ec2.create_vpc with properties.count=3>"


@pytest.mark.parametrize("decide", [bool, len, lambda p: p == "ACTIVE", lambda p: p["n"] > 1, lambda p: p + 1])
def test_deciding_on_a_placeholder_is_refused(decide):
    with pytest.raises(DryRunValueError, match="only known once the call has run"):
        decide(Placeholder("#1 eks.describe_cluster"))
