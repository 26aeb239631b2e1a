"""Plots of a run's mixture and the self-contained HTML report. Reads run folders; knows no model."""

from moemix.report.html import write_report
from moemix.report.plots import plot_run

__all__ = ["plot_run", "write_report"]
