"""Reports: the typed report of a compiled model (report.json is its ``to_json_dict()``), the human summary
printed on the terminal, and the memory plot."""

from .build import build_report, flash_estimate, plan_choice_report
from .report import (IOTensor, LayerReport, MemoryProfile, PatchCandidate, PatchPlanReport, PatchRegion,
                     PlanChoiceReport, PlanEstimate, QuantizationReport, Report, TflmArena)
from .summary import format_summary

__all__ = ["IOTensor", "LayerReport", "MemoryProfile", "PatchCandidate", "PatchPlanReport", "PatchRegion",
           "PlanChoiceReport", "PlanEstimate", "QuantizationReport", "Report", "TflmArena", "build_report",
           "flash_estimate", "format_summary", "plan_choice_report"]
