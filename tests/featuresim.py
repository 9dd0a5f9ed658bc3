"""Analytic generators with known truth for the feature tests and benchmarks.

Not a test module: imported by ``tests/test_jump.py`` & co. and ``benchmarks/bench_features.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import constants

G = constants.g  # standard gravity, m/s², 9.80665 by definition

#: The columns of a hand-written feature row (:func:`feature_rows`).
ROW_COLUMNS = ["recording_id", "task", "trial", "feature", "side", "value", "unit"]


def feature_rows(rows, /, *, subject_id, session):
    """``features`` rows of one subject and session from hand-written tuples.

    ``rows`` are ``(recording_id, task, trial, feature, side, value, unit)``; every row gets
    ``subject_id``, ``session`` and the method ``"test"``.
    """
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    return frame.assign(subject_id=subject_id, session=session, method="test")


def cmj_force(
    *,
    mass_kg=75.0,
    v_to=2.6,
    rate_hz=1000.0,
    quiet_s=1.5,
    t1=0.5,
    t2=0.3,
    a_down=4.0,
    landing_peak_bw=4.0,
    after_s=1.5,
    noise_n=0.0,
    seed=0,
):
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
    f_land = (
        mass_kg * G * (1 + (landing_peak_bw - 1) * np.sin(np.pi * t_l / 0.3) ** 2 * (t_l < 0.3))
    )
    fz = np.concatenate(
        [
            np.full(t_q.size, mass_kg * G),
            mass_kg * (G + a_c),
            mass_kg * (G + a_p),
            np.zeros(n_f),
            np.maximum(f_land, mass_kg * G * 0 + 0),
            np.full(int(after_s * rate_hz), mass_kg * G),
        ]
    )
    if noise_n:
        fz = fz + np.random.default_rng(seed).normal(0, noise_n, fz.size)
    truth = dict(
        onset_s=quiet_s,
        takeoff_s=quiet_s + t1 + t2,
        flight_s=n_f * dt,
        v_to=v_to,
        h=v_to**2 / (2 * G),
        depth=a_down * t1**2 / (2 * np.pi),
        v_min=-a_down * t1 / np.pi,
        mass=mass_kg,
        landing_peak=landing_peak_bw * mass_kg * G,
        n_land=quiet_s + t1 + t2 + n_f * dt,
    )
    return fz, truth


def cop_normal(*, n=30_000, cov=((4e-5, 1e-5), (1e-5, 2e-5)), seed=0):
    """CoP samples (n, 2), m, from a bivariate normal with covariance ``cov`` (m²)."""
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal([0.1, 0.05], np.asarray(cov), size=n)


def min_jerk_speed(t, /, *, duration=1.0, distance=1.0, t0=0.0):
    """Speed of a minimum-jerk point-to-point movement (Flash & Hogan 1985)."""
    tau = np.clip((np.asarray(t) - t0) / duration, 0, 1)
    return distance / duration * 30 * tau**2 * (1 - tau) ** 2


def sj_force(
    *,
    mass_kg=75.0,
    v_to=2.3,
    rate_hz=1000.0,
    quiet_s=1.5,
    t_push=0.35,
    landing_peak_bw=3.5,
    after_s=1.2,
    dip_n=0.0,
    noise_n=0.0,
    seed=0,
):
    """Vertical force of a squat jump from a still squat (no countermovement).

    Push ``a = B sin(πt/T) - g (t/T)²`` on [0, T] (F = 0 at take-off); its integral is
    ``2BT/π - gT/3``, so ``B = (v_to + gT/3) π / (2T)`` gives the take-off velocity ``v_to``.
    ``dip_n`` > 0 adds a 0.2 s half-sine dip of that depth just before the push (a
    countermovement). Returns ``fz`` and the analytic truth.
    """
    dt = 1.0 / rate_hz
    n_q = round(quiet_s * rate_hz)
    quiet = np.full(n_q, mass_kg * G)
    if dip_n:
        k = round(0.2 * rate_hz)
        quiet[-k:] -= dip_n * np.sin(np.pi * np.arange(k) / k)
    t = np.arange(round(t_push * rate_hz)) * dt
    b = (v_to + G * t_push / 3) * np.pi / (2 * t_push)
    a = b * np.sin(np.pi * t / t_push) - G * (t / t_push) ** 2
    n_f = round(2 * v_to / G * rate_hz)
    t_l = np.arange(round(0.3 * rate_hz)) * dt
    land = mass_kg * G * (1 + (landing_peak_bw - 1) * np.sin(np.pi * t_l / 0.3) ** 2)
    fz = np.concatenate(
        [
            quiet,
            mass_kg * (G + a),
            np.zeros(n_f),
            land,
            np.full(round(after_s * rate_hz), mass_kg * G),
        ]
    )
    if noise_n:
        fz = fz + np.random.default_rng(seed).normal(0, noise_n, fz.size)
    # analytic velocity and force over the push, on a fine grid, for power checks
    tt = np.linspace(0, t_push, 200_001)
    vv = b * t_push / np.pi * (1 - np.cos(np.pi * tt / t_push)) - G * tt**3 / (3 * t_push**2)
    ff = mass_kg * (G + b * np.sin(np.pi * tt / t_push) - G * (tt / t_push) ** 2)
    truth = dict(
        onset_s=quiet_s,
        takeoff_s=quiet_s + t_push,
        t_push=t_push,
        v_to=v_to,
        h=v_to**2 / (2 * G),
        flight_s=n_f * dt,
        mass=mass_kg,
        peak_force=float(ff.max()),
        mean_force=float(ff.mean()),
        peak_power=float((ff * vv).max()),
        mean_power=float((ff * vv).mean()),
        landing_peak=landing_peak_bw * mass_kg * G,
    )
    return fz, truth


def dj_force(
    *,
    mass_kg=70.0,
    drop_m=0.30,
    v_to=2.2,
    contact_s=0.22,
    rate_hz=1000.0,
    box_s=0.3,
    landing_peak_bw=3.0,
    after_s=1.5,
    noise_n=0.0,
    seed=0,
):
    """Vertical force of a drop jump: unloaded (on the box), a half-sine contact, flight,
    landing, standing.

    Contact force ``Fp sin(πt/Tc)``: the velocity change over contact is
    ``2 Fp Tc / (π m) - g Tc`` = ``v_to + √(2 g h_drop)``, which sets ``Fp``.
    """
    dt = 1.0 / rate_hz
    v_td = np.sqrt(2 * G * drop_m)
    fp = (v_to + v_td + G * contact_s) * np.pi * mass_kg / (2 * contact_s)
    n_c = round(contact_s * rate_hz)
    contact = fp * np.sin(np.pi * np.arange(n_c + 1) / n_c)[:-1]
    n_f = round(2 * v_to / G * rate_hz)
    t_l = np.arange(round(0.3 * rate_hz)) * dt
    land = mass_kg * G * (1 + (landing_peak_bw - 1) * np.sin(np.pi * t_l / 0.3) ** 2)
    fz = np.concatenate(
        [
            np.zeros(round(box_s * rate_hz)),
            contact,
            np.zeros(n_f),
            land,
            np.full(round(after_s * rate_hz), mass_kg * G),
        ]
    )
    if noise_n:
        fz = fz + np.random.default_rng(seed).normal(0, noise_n, fz.size)
    h = G * (n_f * dt) ** 2 / 8
    return fz, dict(
        contact_s=n_c * dt,
        flight_s=n_f * dt,
        h_flight=h,
        rsi=h / (n_c * dt),
        v_to=v_to,
        peak_contact_bw=fp / (mass_kg * G),
        mass=mass_kg,
        landing_peak_bw=landing_peak_bw,
    )


def imtp_force(
    *,
    mass_kg=80.0,
    delta_n=2200.0,
    tau_s=0.12,
    rate_hz=1000.0,
    quiet_s=1.5,
    pull_s=3.0,
    noise_n=0.0,
    seed=0,
):
    """Vertical force of an IMTP: standing at BW, then ``BW + ΔF (1 - exp(-t/τ))``, release.

    From the true onset ``t0``: ``F(t) - BW = ΔF (1 - e^{-t/τ})``, so the average RFD over
    ``[t1, t1 + w]`` is ``ΔF (e^{-t1/τ} - e^{-(t1+w)/τ}) / w`` and the net impulse over
    ``[t1, t1 + w]`` is ``ΔF (w - τ (e^{-t1/τ} - e^{-(t1+w)/τ}))``.
    """
    dt = 1.0 / rate_hz
    bw = mass_kg * G
    t = np.arange(round(pull_s * rate_hz)) * dt
    pull = bw + delta_n * (1 - np.exp(-t / tau_s))
    rel = bw + (pull[-1] - bw) * np.exp(-np.arange(round(0.5 * rate_hz)) * dt / 0.05)
    fz = np.concatenate(
        [np.full(round(quiet_s * rate_hz), bw), pull, rel, np.full(round(0.5 * rate_hz), bw)]
    )
    if noise_n:
        fz = fz + np.random.default_rng(seed).normal(0, noise_n, fz.size)

    def rfd(t1, w):
        return delta_n * (np.exp(-t1 / tau_s) - np.exp(-(t1 + w) / tau_s)) / w

    def impulse(t1, w):
        return delta_n * (w - tau_s * (np.exp(-t1 / tau_s) - np.exp(-(t1 + w) / tau_s)))

    return fz, dict(
        bw=bw,
        mass=mass_kg,
        onset_s=quiet_s,
        peak=float(pull[-1]),
        peak_s=quiet_s + t[-1],
        rfd=rfd,
        impulse=impulse,
    )
