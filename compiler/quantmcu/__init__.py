"""QuantMCU: value-driven mixed precision for patch-based inference (docs/quantmcu.md).

- ``stats``: statistics of the per-patch stage's feature maps over the calibration set, per patch and per
  channel, from the integer graph (so ONNX float, QDQ and int8 TFLite models alike);
- ``vdpc``: value-driven patch classification: the outlier threshold from calibration (rule and where the
  check looks are options) and the run-time dispatch of the schedule that the device decides per patch.

VDQS (the bitwidth search of the no-outlier chain) comes later and reads the same statistics.
"""

from .stats import MapStats, StageStats, stage_maps, stage_stats
from .vdpc import (LOCATIONS, RULES, RuleComparison, VdpcOptions, VdpcPlan, check_instructions, check_problems,
                   compare_rules, plan_vdpc, runtime_dispatch, threshold_of)

__all__ = ["LOCATIONS", "RULES", "MapStats", "RuleComparison", "StageStats", "VdpcOptions", "VdpcPlan", "check_instructions",
           "check_problems", "compare_rules", "plan_vdpc", "runtime_dispatch", "stage_maps", "stage_stats", "threshold_of"]
