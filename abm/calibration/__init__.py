"""Calibration: fit a few scenario parameters to target moments by the simulated method of moments, on the sweep
machinery (common seeds, local pool or Dask, resumable)."""

from abm.calibration.fit import Calibration, calibrate
from abm.calibration.objective import CalibrationFailed
from abm.calibration.targets import InvalidTargets, load_targets

__all__ = ["calibrate", "Calibration", "CalibrationFailed", "InvalidTargets", "load_targets"]
