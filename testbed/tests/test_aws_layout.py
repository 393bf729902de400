"""The Fargate subnets' layout knobs (EKS_REAPER_TESTBED_FARGATE_PREFIX / _SUBNETS)."""

import pytest

from testbed import aws


def test_default_layout_is_two_28s_from_10_0_1_0():
    assert aws.fargate_cidrs(28, 2) == ["10.0.1.0/28", "10.0.1.16/28"]


def test_three_24s_are_laid_end_to_end():
    assert aws.fargate_cidrs(24, 3) == ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]


def test_blocks_never_overlap_the_cluster_subnet_or_each_other():
    import ipaddress
    cluster = ipaddress.ip_network("10.0.0.0/26")
    for prefix in range(24, 29):
        for count in range(1, 5):
            nets = [ipaddress.ip_network(c) for c in aws.fargate_cidrs(prefix, count)]
            assert len(nets) == count
            for i, n in enumerate(nets):
                assert not n.overlaps(cluster)
                assert all(not n.overlaps(m) for m in nets[i + 1:])


@pytest.mark.parametrize("prefix,count", [(23, 2), (29, 2), (28, 0), (28, 5)])
def test_out_of_range_knobs_are_refused_with_their_name(prefix, count):
    with pytest.raises(ValueError, match="EKS_REAPER_TESTBED_FARGATE_"):
        aws.fargate_cidrs(prefix, count)
