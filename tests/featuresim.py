"""Analytic generators with known truth for the feature tests and benchmarks.

Not a test module: imported by ``tests/test_jump.py`` & co. and ``benchmarks/bench_features.py``.
"""

from __future__ import annotations

import numpy as np

G = 9.80665


def cmj_force(*, mass_kg=75.0, v_to=2.6, rate_hz=1000.0, quiet_s=1.5, t1=0.5, t2=0.3,
              a_down=4.0, landing_peak_bw=4.0, after_s=1.5, noise_n=0.0, seed=0):
    """Vertical force of a CMJ built from an analytic CoM acceleration profile.

    Countermovement ``a = -A sin(2πt/T1)`` on [0, T1] (velocity returns to 0 at T1, minimum
    ``-A·T1/π`` at T1/2, displacement ``-A·T1²/(2π)`` at T1); propulsion
    ``a = B sin(πτ/T2) - g (τ/T2)²`` on [0, T2] (a = -g, F = 0 at take-off), with B set so
    the take-off velocity is ``v_to``; flight ``2 v_to / g``; landing a half-sine peak.

    Returns
    -------
    fz : ndarray, N
    truth : dict (onset_s, takeoff_s, flight_s, v_to, h, depth, v_min, mass)
    """
    dt = 1.0 / rate_hz
    t_q = np.arange(0, quiet_s, dt)
    t_c = np.arange(0, t1, dt)
    a_c = -a_down * np.sin(2 * np.pi * t_c / t1)
    b = (v_to + G * t2 / 3) * np.pi / (2 * t2)
    t_p = np.arange(0, t2, dt)
    a_p = b * np.sin(np.pi * t_p / t2) - G * (t_p / t2) ** 2
    flight = 2 * v_to / G
    n_f = round(flight * rate_hz)
    t_l = np.arange(0, 0.3, dt)
    f_land = mass_kg * G * (1 + (landing_peak_bw - 1) * np.sin(np.pi * t_l / 0.3)
                            ** 2 * (t_l < 0.3))
    fz = np.concatenate([
        np.full(t_q.size, mass_kg * G),
        mass_kg * (G + a_c),
        mass_kg * (G + a_p),
        np.zeros(n_f),
        np.maximum(f_land, mass_kg * G * 0 + 0),
        np.full(int(after_s * rate_hz), mass_kg * G),
    ])
    if noise_n:
        fz = fz + np.random.default_rng(seed).normal(0, noise_n, fz.size)
    truth = dict(onset_s=quiet_s, takeoff_s=quiet_s + t1 + t2, flight_s=n_f * dt, v_to=v_to,
                 h=v_to ** 2 / (2 * G), depth=a_down * t1 ** 2 / (2 * np.pi),
                 v_min=-a_down * t1 / np.pi, mass=mass_kg, landing_peak=landing_peak_bw
                 * mass_kg * G, n_land=quiet_s + t1 + t2 + n_f * dt)
    return fz, truth


def cop_normal(*, n=30_000, cov=((4e-5, 1e-5), (1e-5, 2e-5)), seed=0):
    """CoP samples (n, 2), m, from a bivariate normal with covariance ``cov`` (m²)."""
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal([0.1, 0.05], np.asarray(cov), size=n)


def min_jerk_speed(t, /, *, duration=1.0, distance=1.0, t0=0.0):
    """Speed of a minimum-jerk point-to-point movement (Flash & Hogan 1985)."""
    tau = np.clip((np.asarray(t) - t0) / duration, 0, 1)
    return distance / duration * 30 * tau ** 2 * (1 - tau) ** 2
