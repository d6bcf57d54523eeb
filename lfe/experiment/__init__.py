"""The incremental-catalogue experiment behind `lfe experiment`."""

from lfe.experiment.report import periods_table, summary_table, write_results
from lfe.experiment.runner import ExperimentConfig, run_experiment
from lfe.experiment.strategies import available_strategies

__all__ = [
    "ExperimentConfig",
    "available_strategies",
    "periods_table",
    "run_experiment",
    "summary_table",
    "write_results",
]
