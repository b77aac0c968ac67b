"""Patch-based inference (MCUNetV2): run the memory-hungry first stage one spatial patch at a time."""

from .planner import PatchPlan, Region, candidate_splits, plan_patches

__all__ = ["PatchPlan", "Region", "candidate_splits", "plan_patches"]
