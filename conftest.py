"""Suite-wide settings. Hypothesis' per-example deadline is off: CI shares two cores with kernel
tests, and a slow example is not a failing one (the properties are what the tests assert)."""

from hypothesis import HealthCheck, settings

settings.register_profile("proxyctl", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("proxyctl")
