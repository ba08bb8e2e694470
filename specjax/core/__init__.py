"""The model of the paper: fully connected networks, the paper's teachers and students, data, and metrics."""

from specjax.core import data, metrics, networks, teachers

__all__ = ["data", "metrics", "networks", "teachers"]
