"""Fault-matrix tests: the real eks-reaper binary against the real testbed."""
