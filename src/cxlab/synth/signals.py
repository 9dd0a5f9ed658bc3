"""Force and marker signals generated from physics, with their exact truth.

Every generator takes a :class:`numpy.random.Generator` and returns a :class:`Trial`
(lab frame of ``docs/conventions.md``: Z up, +X anterior, +Y the subject's left, floor
z = 0, SI units) plus a ``truth`` dict of the quantities it was built to have.

- :func:`cmj_trial`: countermovement jump on two plates. The net vertical acceleration
  is built piecewise (quiet standing, unweighting, braking/propulsion, flight, landing,
  settling); the take-off velocity ``v`` is imposed exactly on the trapezoid integral of
  the sampled acceleration, so the jump height ``v**2 / (2 g)`` is known.
- :func:`balance_trial`: 30 s single-leg stance; CoP from a low-pass Gaussian process
  scaled to the exact mean velocity.

Trials with markers (drop landing, posture) are in :mod:`cxlab.synth.kinematics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal as _sig

from cxlab.units import G

__all__ = [
    "PLATES",
    "G",
    "Trial",
    "balance_trial",
    "cmj_trial",
]

#: Plate centres (lab frame, m): plate 1 under the left foot (+Y), plate 2 the right.
PLATE_SIZE_M = (0.600, 0.400)  # along X, along Y
PLATES = (np.array([0.0, 0.205, 0.0]), np.array([0.0, -0.205, 0.0]))
FOOT_Y_M = 0.11  # |y| of each ankle / CoP line, m


@dataclass
class Trial:
    """One generated trial in the lab frame, SI units.

    Attributes
    ----------
    analog_rate_hz, point_rate_hz : float
    forces : list of ndarray, shape (n_samples, 3)
        Ground reaction force on the body per plate, N (noise-free).
    cops : list of ndarray, shape (n_samples, 3)
        Centre of pressure per plate, m (z = 0).
    plates : list of int
        Indices into :data:`PLATES` of the plates used.
    markers : ndarray, shape (n_frames, n_markers, 3)
        Marker positions, m (noise-free); ``(0, 0, 3)`` when there are none.
    marker_labels : tuple of str
    truth : dict
        What the trial was built to contain (see each generator).
    """

    analog_rate_hz: float
    point_rate_hz: float
    forces: list[np.ndarray] = field(default_factory=list)
    cops: list[np.ndarray] = field(default_factory=list)
    plates: list[int] = field(default_factory=list)
    markers: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))
    marker_labels: tuple[str, ...] = ()
    truth: dict = field(default_factory=dict)
    #: EMG channels at ``analog_rate_hz``, V, shape (n_samples, n_channels), or None.
    emg: np.ndarray | None = None
    emg_labels: tuple[str, ...] = ()


def _smoothstep(u):
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _ease_out(u):
    """0 -> 1 on [0, 1] leaving 0 with slope 2 and arriving flat: ``1 - (1 - u)^2``."""
    u = np.clip(u, 0.0, 1.0)
    return 1.0 - (1.0 - u) ** 2


def _ease_in(u):
    """0 -> 1 on [0, 1] leaving flat and arriving with slope 1: ``u^2 (2 - u)``."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (2.0 - u)


def _sway(rng, n, dt, amp):
    """Zero-mean smooth sway acceleration over ``n`` samples, m/s^2.

    A sum of sines with an even number of whole periods in the window, so the mean
    over the whole window *and over each half* is exactly zero and the velocity
    returns to zero at both ends.
    """
    t = np.arange(n) * dt
    T = n * dt
    k = np.array([2, 4, 6])
    a = rng.normal(0.0, amp, 3)
    return (a[:, None] * np.sin(2 * np.pi * k[:, None] * t[None, :] / T)).sum(axis=0)


def _split(total, lsi_pct, weak_side):
    """Left and right shares of ``total`` with weak/strong = ``lsi_pct / 100``."""
    weak = lsi_pct / (100.0 + lsi_pct)
    strong = 100.0 / (100.0 + lsi_pct)
    left, right = (weak, strong) if weak_side == "left" else (strong, weak)
    return left * total, right * total


def _feet_forces(fz, lsi_pct, weak_side, mass_kg, rng, n):
    """Per-plate 3-D forces and CoPs from a total vertical force trace."""
    fl, fr = _split(fz, lsi_pct, weak_side)
    t = np.arange(n)
    forces, cops = [], []
    shift = rng.normal(0.0, 0.003, 2)
    for k, (f, s) in enumerate(((fl, 1.0), (fr, -1.0))):
        dyn = f - 0.5 * mass_kg * G
        fx = 0.04 * dyn + 0.01 * f * np.sin(2 * np.pi * t / (n + 7.0))
        fy = -s * 0.03 * f  # each foot pushes outward; the reaction points to the midline
        forces.append(np.column_stack([fx, fy, f]))
        cop_x = 0.04 + shift[k] + 0.06 * np.clip(dyn / (mass_kg * G), 0.0, 1.0)
        cop = np.column_stack([cop_x, np.full(n, s * FOOT_Y_M + shift[k]), np.zeros(n)])
        cops.append(cop)
    return forces, cops


def cmj_trial(rng, /, *, mass_kg, jump_height_m, lsi_pct, weak_side, rate_hz=1000.0):
    """A countermovement jump on plates 1 (left) and 2 (right), built from physics.

    Parameters
    ----------
    rng : numpy.random.Generator
    mass_kg : float
        Body mass, kg.
    jump_height_m : float
        Rise of the centre of mass after take-off, m; the take-off velocity is
        ``sqrt(2 g h)``.
    lsi_pct : float
        Weak/strong ratio x 100 of the two plates' forces, constant over the trial,
        so every per-side impulse or peak has this limb symmetry index.
    weak_side : {"left", "right"}
    rate_hz : float
        Analog rate, Hz.

    Returns
    -------
    Trial
        ``truth``: ``body_mass_kg``, ``takeoff_velocity_m_s``, ``jump_height_m``
        (v^2 / 2g), ``flight_time_s``, ``takeoff_s``, ``landing_s``, ``movement_onset_s``,
        ``quiet_s``, ``lsi_pct``.

    Notes
    -----
    Net acceleration ``a = F/m - g``: quiet standing (2 s; sway whose mean over each
    second is exactly zero), unweighting ``-A1 sin^2(pi tau)``, braking/propulsion
    ``A2 sin^2(pi tau) - g E_in((tau - 0.92) / 0.08)`` (force falls linearly to zero at
    take-off over the last 8 %), flight (``a = -g`` for ``2 v / g``), landing
    ``A3 sin^2(pi tau) - g (1 - E_out(tau / 0.1))`` (force rises linearly from zero at
    touchdown) and 1 s of settling; ``E_in(u) = u^2 (2 - u)``,
    ``E_out(u) = 1 - (1 - u)^2``. ``A2`` and ``A3`` are solved so that the trapezoid
    integrals of the sampled ``a`` are ``v`` and ``-v`` exactly.
    """
    dt = 1.0 / rate_hz
    v_to = float(np.sqrt(2.0 * G * jump_height_m))
    n_q = int(np.rint(2.0 * rate_hz))
    quiet = _sway(rng, n_q, dt, 0.03)
    t1 = rng.uniform(0.30, 0.40)
    a1 = rng.uniform(4.5, 6.5)
    tau1 = np.arange(1, int(np.rint(t1 * rate_hz)) + 1) * dt / t1
    unweight = -a1 * np.sin(np.pi * tau1) ** 2
    t2 = rng.uniform(0.40, 0.50)
    tau2 = np.arange(1, int(np.rint(t2 * rate_hz)) + 1) * dt / t2
    p2 = np.sin(np.pi * tau2) ** 2
    q2 = -G * _ease_in((tau2 - 0.92) / 0.08)  # force falls to 0 in the last 8 %, linearly
    head = np.concatenate([quiet, unweight])
    # v(take-off) = trapz over [start .. end of propulsion] = v_to  (linear in A2)
    base = np.concatenate([head, q2])
    unit = np.concatenate([np.zeros_like(head), p2])
    A2 = (v_to - np.trapezoid(base, dx=dt)) / np.trapezoid(unit, dx=dt)
    accel = base + A2 * unit
    i_to = len(accel) - 1  # last contact sample: a = -g exactly, force 0
    n_flight = int(np.rint(2.0 * v_to / G * rate_hz))
    flight = np.full(n_flight - 1, -G)
    t3 = rng.uniform(0.25, 0.35)
    tau3 = np.arange(0, int(np.rint(t3 * rate_hz)) + 1) * dt / t3
    p3 = np.sin(np.pi * tau3) ** 2
    q3 = -G * (1.0 - _ease_out(tau3 / 0.1))  # force rises from 0 linearly at touchdown
    # landing: from -v_to back to rest, counting the flight samples' share
    seg = np.concatenate([[-G], flight, q3])
    unit3 = np.concatenate([np.zeros(n_flight), p3])
    A3 = (-v_to - np.trapezoid(seg, dx=dt)) / np.trapezoid(unit3, dx=dt)
    land = q3 + A3 * p3
    settle = _sway(rng, int(np.rint(1.0 * rate_hz)), dt, 0.05)
    accel = np.concatenate([accel, flight, land, settle])
    return _two_plates(
        accel,
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
            "takeoff_s": i_to * dt,
            "landing_s": (i_to + n_flight) * dt,
            "movement_onset_s": n_q * dt,
            "quiet_s": n_q * dt,
            "lsi_pct": lsi_pct,
        },
    )


def _two_plates(accel, mass_kg, lsi_pct, weak_side, rng, rate_hz, truth) -> Trial:
    """A two-plate trial from the net vertical acceleration ``accel`` (m/s², shape (n,)):
    ``fz = max(m (g + a), 0)`` split between the feet by ``lsi_pct``, zero in the air."""
    fz = np.maximum(mass_kg * (G + accel), 0.0)
    forces, cops = _feet_forces(fz, lsi_pct, weak_side, mass_kg, rng, len(fz))
    for f in forces:
        f[fz <= 0.0] = 0.0
    return Trial(
        analog_rate_hz=rate_hz,
        point_rate_hz=rate_hz / 5,
        forces=forces,
        cops=cops,
        plates=[0, 1],
        truth=truth,
    )


def balance_trial(rng, /, *, mass_kg, mean_velocity_m_s, stance, rate_hz=100.0, duration_s=30.0):
    """Single-leg stance on plate 1 with CoP sway of an exact mean velocity.

    Parameters
    ----------
    mass_kg : float
    mean_velocity_m_s : float
        Path length / duration of the noise-free CoP at ``rate_hz``, m/s (exact).
    stance : {"left", "right"}
        The stance leg; it stands on plate 1 whichever leg it is.
    rate_hz : float
        Analog rate, Hz. 100 Hz keeps the 30 s files small (a third of a 1000 Hz file's
        tenth); CoP sway lies below 5 Hz.
    duration_s : float

    Returns
    -------
    Trial
        ``truth``: ``mean_velocity_m_s``, ``rms_ap_m``, ``rms_ml_m``,
        ``ellipse_area_m2`` (95 % prediction ellipse, ``pi * chi2_2(0.95) *
        sqrt(det(cov))``, Schubert & Kirchner 2014), ``stance``.

    Notes
    -----
    CoP = plate-1 centre + (AP, ML) where AP and ML are independent white Gaussian
    noise through a 4th-order zero-phase Butterworth low-pass at 1.5 Hz, ML scaled to
    1.3 x AP, then both multiplied so that ``sum |diff(CoP)| / duration`` equals
    ``mean_velocity_m_s``.
    """
    n = int(np.rint(duration_s * rate_hz))
    sos = _sig.butter(4, 1.5, fs=rate_hz, output="sos")
    raw = _sig.sosfiltfilt(sos, rng.normal(0.0, 1.0, (2, n + 400)), axis=1)[:, 200:-200]
    raw -= raw.mean(axis=1, keepdims=True)
    raw[1] *= 1.3 * raw[0].std() / raw[1].std()
    path = np.hypot(np.diff(raw[0]), np.diff(raw[1])).sum()
    scale = mean_velocity_m_s * n / rate_hz / path
    ap, ml = raw * scale
    cop = PLATES[0] + np.column_stack([ap, ml, np.zeros(n)])
    fz = mass_kg * (G + _sway(rng, n, 1.0 / rate_hz, 0.02))
    # small horizontal shear opposing the sway (about 1 % of body weight at most)
    fx = -0.01 * mass_kg * G * ap / max(np.abs(ap).max(), 1e-9)
    fy = -0.01 * mass_kg * G * ml / max(np.abs(ml).max(), 1e-9)
    cov = np.cov(np.vstack([ap, ml]))
    return Trial(
        analog_rate_hz=rate_hz,
        point_rate_hz=rate_hz,
        forces=[np.column_stack([fx, fy, fz])],
        cops=[cop],
        plates=[0],
        truth={
            "mean_velocity_m_s": float(np.hypot(np.diff(ap), np.diff(ml)).sum() / (n / rate_hz)),
            "rms_ap_m": float(np.sqrt(np.mean(ap**2))),
            "rms_ml_m": float(np.sqrt(np.mean(ml**2))),
            "ellipse_area_m2": float(np.pi * 5.991464547107979 * np.sqrt(np.linalg.det(cov))),
            "stance": stance,
        },
    )
