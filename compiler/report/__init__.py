"""Reports: the JSON report, and the human summary printed on the terminal."""

from .summary import build_report, flash_estimate, format_summary

__all__ = ["build_report", "flash_estimate", "format_summary"]
