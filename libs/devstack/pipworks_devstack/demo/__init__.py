"""The golden path as API clients walk it, for ``make demo`` and the end-to-end test."""

from pipworks_devstack.demo.golden_path import GoldenPath
from pipworks_devstack.demo.results import StepRecord
from pipworks_devstack.demo.scenario import Amounts, Outcome, run_golden_path
from pipworks_devstack.demo.waiting import StepFailed, wait_until

__all__ = [
    "Amounts",
    "GoldenPath",
    "Outcome",
    "StepFailed",
    "StepRecord",
    "run_golden_path",
    "wait_until",
]
