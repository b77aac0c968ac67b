"""QuantMCU: value-driven mixed precision for patch-based inference (docs/quantmcu.md).

- ``stats``: statistics of the per-patch stage's feature maps over the calibration set, per patch and per
  channel, from the integer graph (so ONNX float, QDQ and int8 TFLite models alike);
- ``vdpc``: value-driven patch classification: the outlier threshold from calibration (rule and where the
  check looks are options) and the run-time dispatch of the schedule that the device decides per patch;
- ``lowbit``: the low-bit chain (packed 4/2-bit maps calibrated on the no-outlier patches) and its patch loop;
- ``vdqs``: the bitwidth search of the low-bit chain, each step validated by an output-quality guard
  (``vdqs.vdqs``; the package exports the module under that name, not the function);
- ``plan``: ``plan_quantmcu``, the method's entry point on a patch plan (what ``compile_model`` calls);
- ``options``: the method's options and the result a QuantMCU compile produces.
"""

from .options import FeatureMapChoice, QuantmcuOptions, QuantmcuResult, SearchStep
from .plan import PlanEvaluation, evaluate_plan, plan_quantmcu
from .stats import MapStats, StageStats, stage_maps, stage_stats
from .vdpc import (
                   LOCATIONS,
                   RULES,
                   RuleComparison,
                   VdpcOptions,
                   VdpcPlan,
                   check_instructions,
                   check_problems,
                   compare_rules,
                   plan_vdpc,
                   runtime_dispatch,
                   threshold_of,
)
from .vdqs import VdqsResult, split_calibration

__all__ = ["LOCATIONS", "RULES", "FeatureMapChoice", "MapStats", "PlanEvaluation", "QuantmcuOptions", "QuantmcuResult",
           "RuleComparison", "SearchStep", "StageStats", "VdpcOptions", "VdpcPlan", "VdqsResult", "check_instructions",
           "check_problems", "compare_rules", "evaluate_plan", "plan_quantmcu", "plan_vdpc", "runtime_dispatch",
           "split_calibration", "stage_maps", "stage_stats", "threshold_of"]
