"""Great-circle distance and travel speed between transaction locations.

Geo-velocity ("impossible travel") is a classic card-fraud signal: a card used in Lima
and, 20 minutes later, in Cusco (~575 km away) was not carried there.

>>> round(haversine_km(-12.0464, -77.0428, -13.5320, -71.9675))
575
"""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt

#: Mean Earth radius (IUGG), km. The sphere is within 0.5 % of the ellipsoid here.
EARTH_RADIUS_KM = 6371.0088
#: Speeds are capped here: faster than any airliner, so "impossible" without being huge.
MAX_SPEED_KMH = 2000.0
#: Two fixes closer in time than this are treated as this far apart, so that
#: coordinate jitter between near-simultaneous events does not read as supersonic.
MIN_INTERVAL_S = 60.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two (lat, lon) points in degrees.

    >>> haversine_km(0.0, 0.0, 0.0, 0.0)
    0.0
    """
    p1 = radians(lat1)
    p2 = radians(lat2)
    h = sin((p2 - p1) * 0.5) ** 2 + cos(p1) * cos(p2) * sin(radians(lon2 - lon1) * 0.5) ** 2
    return 2.0 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))


def speed_kmh(distance_km: float, interval_s: float) -> float:
    """Travel speed for ``distance_km`` covered in ``interval_s`` seconds, capped.

    The interval is taken as absolute (out-of-order events) and floored at
    :data:`MIN_INTERVAL_S`; the result never exceeds :data:`MAX_SPEED_KMH`.

    >>> speed_kmh(580.0, 3600.0)
    580.0
    >>> speed_kmh(580.0, 0.0)
    2000.0
    """
    if distance_km <= 0.0:
        return 0.0
    interval_s = abs(interval_s)
    if interval_s < MIN_INTERVAL_S:
        interval_s = MIN_INTERVAL_S
    speed = distance_km * 3600.0 / interval_s
    return speed if speed < MAX_SPEED_KMH else MAX_SPEED_KMH


def valid_point(lat: float | None, lon: float | None) -> bool:
    """True when both coordinates are present, finite and in range (NaN fails)."""
    return lat is not None and lon is not None and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0
