"""Fault-matrix tests (issue 7): the real eks-reaper binary against the real testbed."""
