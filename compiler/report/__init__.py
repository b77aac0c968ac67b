"""Reports: the typed report of a compiled model (report.json is its ``to_json_dict()``), the human summary
printed on the terminal, and the memory plot."""

from .build import build_report, flash_estimate, plan_choice_report, quantmcu_report
from .report import (
                     FeatureMapReport,
                     IOTensor,
                     LayerReport,
                     MemoryProfile,
                     PatchCandidate,
                     PatchPlanReport,
                     PatchRegion,
                     PlanChoiceReport,
                     PlanEstimate,
                     QuantizationReport,
                     QuantmcuReport,
                     Report,
                     SearchStepReport,
                     TflmArena,
)
from .summary import format_summary

__all__ = ["FeatureMapReport", "IOTensor", "LayerReport", "MemoryProfile", "PatchCandidate", "PatchPlanReport",
           "PatchRegion", "PlanChoiceReport", "PlanEstimate", "QuantizationReport", "QuantmcuReport", "Report",
           "SearchStepReport", "TflmArena", "build_report", "flash_estimate", "format_summary", "plan_choice_report",
           "quantmcu_report"]
