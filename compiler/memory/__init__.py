"""Static memory planning: tensor lifetimes -> offsets in one arena."""

from .planner import ArenaPlan, plan_memory

__all__ = ["ArenaPlan", "plan_memory"]
