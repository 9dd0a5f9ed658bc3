"""Squat jump, drop jump, isometric mid-thigh pull on two plates; single-leg CMJ and repeated
single-leg hops on one plate; each with its exact truth.

Same construction as :func:`cxlab.synth.signals.cmj_trial`: the net vertical acceleration
is built piecewise and the take-off velocity is imposed exactly on the trapezoid integral
of the sampled acceleration, so heights, contact and flight times, peak forces, RFD and
impulse are known. Plate 1 is under the left foot, plate 2 the right; the two plates'
forces split the total by the session's LSI (weak/strong).
"""

from __future__ import annotations

import numpy as np

from cxlab.synth.signals import (
    G,
    Trial,
    _ease_in,
    _ease_out,
    _feet_forces,
    _sway,
    _two_plates,
    cmj_trial,
)

__all__ = ["dj_trial", "hop_trial", "imtp_trial", "single_leg_cmj_trial", "sj_trial"]
SIDES = ("left", "right")


def _flight_landing(rng, v_to: float, rate_hz: float):
    """Accelerations from the sample after take-off to rest (flight, landing, 1 s settle)."""
    dt = 1.0 / rate_hz
    n_flight = int(np.rint(2.0 * v_to / G * rate_hz))
    flight = np.full(n_flight - 1, -G)
    t3 = rng.uniform(0.25, 0.35)
    tau3 = np.arange(0, int(np.rint(t3 * rate_hz)) + 1) * dt / t3
    p3 = np.sin(np.pi * tau3) ** 2
    q3 = -G * (1.0 - _ease_out(tau3 / 0.1))
    seg = np.concatenate([[-G], flight, q3])
    unit3 = np.concatenate([np.zeros(n_flight), p3])
    A3 = (-v_to - np.trapezoid(seg, dx=dt)) / np.trapezoid(unit3, dx=dt)
    settle = _sway(rng, int(np.rint(1.2 * rate_hz)), dt, 0.05)
    return np.concatenate([flight, q3 + A3 * p3, settle]), n_flight


def _squat_push(rng, v_to: float, rate_hz: float) -> np.ndarray:
    """Net vertical acceleration (m/s², shape (n,)) of 2 s of still squat then a push
    ``A sin²(πτ) − g E_in((τ − 0.92)/0.08)`` over 0.30-0.40 s whose integral is ``v_to``
    (m/s) at the last sample: the start of a squat jump and of a hop series."""
    dt = 1.0 / rate_hz
    quiet = _sway(rng, int(np.rint(2.0 * rate_hz)), dt, 0.03)
    t2 = rng.uniform(0.30, 0.40)
    tau = np.arange(1, int(np.rint(t2 * rate_hz)) + 1) * dt / t2
    p2, q2 = np.sin(np.pi * tau) ** 2, -G * _ease_in((tau - 0.92) / 0.08)
    base = np.concatenate([quiet, q2])
    unit = np.concatenate([np.zeros_like(quiet), p2])
    return base + (v_to - np.trapezoid(base, dx=dt)) / np.trapezoid(unit, dx=dt) * unit


def sj_trial(rng, /, *, mass_kg, jump_height_m, lsi_pct, weak_side, rate_hz=1000.0):
    """A squat jump from a 2 s still squat: push ``A sin²(πτ) − g E_in((τ − 0.92)/0.08)``.

    Returns
    -------
    Trial
        ``truth``: ``body_mass_kg``, ``takeoff_velocity_m_s``, ``jump_height_m``,
        ``flight_time_s``, ``push_time_s``, ``lsi_pct``.
    """
    dt = 1.0 / rate_hz
    v_to = float(np.sqrt(2.0 * G * jump_height_m))
    accel = _squat_push(rng, v_to, rate_hz)
    n_push = accel.size - int(np.rint(2.0 * rate_hz))  # after the 2 s still squat
    rest, n_flight = _flight_landing(rng, v_to, rate_hz)
    return _two_plates(
        np.concatenate([accel, rest]),
        mass_kg,
        lsi_pct,
        weak_side,
        rng,
        rate_hz,
        {
            "body_mass_kg": mass_kg,
            "takeoff_velocity_m_s": v_to,
            "jump_height_m": v_to**2 / (2 * G),
            "flight_time_s": n_flight * dt,
            "push_time_s": n_push * dt,
            "lsi_pct": lsi_pct,
        },
    )


def dj_trial(
    rng,
    /,
    *,
    mass_kg,
    drop_height_m,
    contact_time_s,
    jump_height_m,
    lsi_pct,
    weak_side,
    rate_hz=1000.0,
):
    """A drop jump: 0.3 s on the box (plates empty), a half-sine contact ``Fp sin(πτ)``,
    flight, landing and standing; ``Fp`` makes the contact turn ``−√(2 g h_drop)`` into the
    take-off velocity ``√(2 g h)`` exactly (trapezoid integral).

    Returns
    -------
    Trial
        ``truth``: ``contact_time_s``, ``flight_time_s``, ``jump_height_flight_m``
        (``g t_f²/8``), ``rsi`` (height / contact time, m/s), ``peak_contact_force_bw``,
        ``body_mass_kg``, ``drop_height_m``, ``lsi_pct``.
    """
    dt = 1.0 / rate_hz
    v_td = float(np.sqrt(2.0 * G * drop_height_m))
    v_to = float(np.sqrt(2.0 * G * jump_height_m))
    n_c = int(np.rint(contact_time_s * rate_hz))
    shape = np.sin(np.pi * np.arange(n_c + 1) / n_c)  # F = 0 at touchdown and take-off
    # trapz(Fp/m * shape - g) over the contact = v_to + v_td
    fp = (v_to + v_td + G * n_c * dt) * mass_kg / np.trapezoid(shape, dx=dt)
    box = np.full(int(np.rint(0.3 * rate_hz)), -G)
    contact = fp / mass_kg * shape - G
    rest, n_flight = _flight_landing(rng, v_to, rate_hz)
    t_f = n_flight * dt
    return _two_plates(
        np.concatenate([box, contact, rest]),
        mass_kg,
        lsi_pct,
        weak_side,
        rng,
        rate_hz,
        {
            "body_mass_kg": mass_kg,
            "drop_height_m": drop_height_m,
            "contact_time_s": n_c * dt,
            "flight_time_s": t_f,
            "jump_height_flight_m": G * t_f**2 / 8,
            "rsi": G * t_f**2 / 8 / (n_c * dt),
            "peak_contact_force_bw": fp / (mass_kg * G),
            "lsi_pct": lsi_pct,
        },
    )


def imtp_trial(rng, /, *, mass_kg, peak_net_force_n, tau_s, lsi_pct, weak_side, rate_hz=1000.0):
    """An isometric mid-thigh pull: 2 s weighing, ``BW + ΔF (1 − e^{−t/τ})`` for 3 s, release.

    Returns
    -------
    Trial
        ``truth``: ``peak_force_net_n`` (``ΔF (1 − e^{−3/τ})``), ``rfd_0_<w>_n_s`` and
        ``impulse_0_<w>_n_s`` for w = 50, 100, 200 ms from the true onset
        (``ΔF (1 − e^{−w/τ}) / w`` and ``ΔF (w − τ (1 − e^{−w/τ}))``), ``onset_s``,
        ``body_mass_kg``, ``lsi_pct``.
    """
    dt = 1.0 / rate_hz
    quiet = _sway(rng, int(np.rint(2.0 * rate_hz)), dt, 0.02)
    t = np.arange(int(np.rint(3.0 * rate_hz))) * dt
    net = peak_net_force_n * (1 - np.exp(-t / tau_s))
    rel = net[-1] * np.exp(-np.arange(int(np.rint(0.5 * rate_hz))) * dt / 0.08)
    fz = mass_kg * G + np.concatenate([mass_kg * quiet, net, rel, np.zeros(int(rate_hz))])
    accel = fz / mass_kg - G
    truth = {
        "body_mass_kg": mass_kg,
        "onset_s": len(quiet) * dt,
        "peak_force_net_n": float(net.max()),
        "lsi_pct": lsi_pct,
    }
    for w in (50, 100, 200):
        s = w / 1000.0
        truth[f"rfd_0_{w}_n_s"] = peak_net_force_n * (1 - np.exp(-s / tau_s)) / s
        truth[f"impulse_0_{w}_n_s"] = peak_net_force_n * (s - tau_s * (1 - np.exp(-s / tau_s)))
    return _two_plates(accel, mass_kg, lsi_pct, weak_side, rng, rate_hz, truth)


def _stance(side: str) -> int:
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    return SIDES.index(side)


def single_leg_cmj_trial(rng, /, *, mass_kg, jump_height_m, side, rate_hz=1000.0):
    """A single-leg countermovement jump: :func:`cxlab.synth.signals.cmj_trial`'s physics,
    the whole force on the stance leg's plate (plate 1 left, plate 2 right) and none on the
    other, which is left out of the trial.

    Returns
    -------
    Trial
        One plate; ``truth`` as ``cmj_trial`` (``jump_height_m``, ``takeoff_velocity_m_s``,
        ``flight_time_s``, ...) without ``lsi_pct``, plus ``side``.
    """
    k = _stance(side)
    t = cmj_trial(
        rng,
        mass_kg=mass_kg,
        jump_height_m=jump_height_m,
        lsi_pct=100.0,
        weak_side="left",
        rate_hz=rate_hz,
    )
    truth = {key: v for key, v in t.truth.items() if key != "lsi_pct"}
    return Trial(
        analog_rate_hz=rate_hz,
        point_rate_hz=t.point_rate_hz,
        forces=[t.forces[0] + t.forces[1]],
        cops=[t.cops[k]],
        plates=[k],
        truth={**truth, "side": side},
    )


def hop_trial(rng, /, *, mass_kg, jump_height_m, contact_time_s, side, n_hops=5, rate_hz=1000.0):
    """Repeated single-leg hops on one plate: a squat-jump push to the first take-off, then
    ``n_hops`` half-sine contacts ``Fp sin(πτ)`` between flights, and a final landing.

    Each flight lasts ``n_f = rint(2 v / g · rate)`` samples with ``v = √(2 g h)``; each
    contact's ``Fp`` is solved so that the trapezoid integral of the sampled acceleration
    turns the touchdown velocity ``v − g n_f dt`` into the take-off velocity ``v`` exactly,
    so every flight is the same and no velocity drifts over the hops.

    Returns
    -------
    Trial
        One plate (1 left, 2 right); ``truth``: ``n_hops`` (contacts between two flights),
        ``contact_time_s`` (``n_c dt``), ``flight_time_s`` (``n_f dt``),
        ``jump_height_flight_m`` (``g t_f² / 8``), ``rsi`` (height / contact time, m/s),
        ``body_mass_kg``, ``side``.
    """
    k = _stance(side)
    dt = 1.0 / rate_hz
    v = float(np.sqrt(2.0 * G * jump_height_m))
    push = _squat_push(rng, v, rate_hz)
    n_f = int(np.rint(2.0 * v / G * rate_hz))
    n_c = int(np.rint(contact_time_s * rate_hz))
    shape = np.sin(np.pi * np.arange(n_c + 1) / n_c)  # force 0 at touchdown and take-off
    v_td = v - G * n_f * dt  # velocity at the contact's first sample after a flight
    fp = (v - v_td + G * n_c * dt) * mass_kg / np.trapezoid(shape, dx=dt)
    hop = np.concatenate([np.full(n_f - 1, -G), fp / mass_kg * shape - G])
    rest, _ = _flight_landing(rng, v, rate_hz)
    accel = np.concatenate([push, np.tile(hop, n_hops), rest])
    fz = np.maximum(mass_kg * (G + accel), 0.0)
    other = SIDES[1 - k]
    forces, cops = _feet_forces(fz, 0.0, other, mass_kg, rng, len(fz))  # all on the stance leg
    f = forces[k]
    f[fz <= 0.0] = 0.0
    t_f = n_f * dt
    return Trial(
        analog_rate_hz=rate_hz,
        point_rate_hz=rate_hz / 5,
        forces=[f],
        cops=[cops[k]],
        plates=[k],
        truth={
            "body_mass_kg": mass_kg,
            "side": side,
            "n_hops": int(n_hops),
            "contact_time_s": n_c * dt,
            "flight_time_s": t_f,
            "jump_height_flight_m": G * t_f**2 / 8,
            "rsi": G * t_f**2 / 8 / (n_c * dt),
            "peak_contact_force_bw": fp / (mass_kg * G),
        },
    )
