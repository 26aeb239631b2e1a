"""Evaluate a model or a run: per-dataset dev loss, GSM8K exact match, HumanEval and MBPP pass@1.

Generated code runs only in separate, shut-in, resource-limited processes (:mod:`moemix.eval.sandbox`).
"""

from moemix.eval.runner import TASKS, EvalOptions, evaluate, format_table, parse_tasks

__all__ = ["TASKS", "EvalOptions", "evaluate", "format_table", "parse_tasks"]
