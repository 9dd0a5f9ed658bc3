"""Force and marker signals generated from physics, with their exact truth.

Every generator takes a :class:`numpy.random.Generator` and returns a :class:`Trial`
(lab frame of ``docs/conventions.md``: Z up, +X anterior, +Y the subject's left, floor
z = 0, SI units) plus a ``truth`` dict of the quantities it was built to have.

- :func:`cmj_trial`: countermovement jump on two plates. The net vertical acceleration
  is built piecewise (quiet standing, unweighting, braking/propulsion, flight, landing,
  settling); the take-off velocity ``v`` is imposed exactly on the trapezoid integral of
  the sampled acceleration, so the jump height ``v**2 / (2 g)`` is known.
- :func:`landing_trial`: drop landing from a 30 cm box with lower-limb/pelvis markers
  whose knee frontal plane projection angle (FPPA) is known in every frame.
- :func:`balance_trial`: 30 s single-leg stance; CoP from a low-pass Gaussian process
  scaled to the exact mean velocity.
- :func:`posture_trial`: static standing markers giving an exact craniovertebral angle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal as _sig

__all__ = [
    "PLATES",
    "G",
    "Trial",
    "balance_trial",
    "cmj_trial",
    "landing_trial",
    "posture_trial",
]

G = 9.80665  # m/s^2, standard gravity
#: Plate centres (lab frame, m): plate 1 under the left foot (+Y), plate 2 the right.
PLATE_SIZE_M = (0.600, 0.400)  # along X, along Y
PLATES = (np.array([0.0, 0.205, 0.0]), np.array([0.0, -0.205, 0.0]))
FOOT_Y_M = 0.11  # |y| of each ankle / CoP line, m
DROP_HEIGHT_M = 0.30

LOWER_LIMB_MARKERS = ("LASI", "RASI", "LPSI", "RPSI", "LHJC", "RHJC", "LKNE", "RKNE",
                      "LKJC", "RKJC", "LANK", "RANK", "LAJC", "RAJC", "LHEE", "RHEE",
                      "LTOE", "RTOE")
POSTURE_MARKERS = ("LFHD", "RFHD", "LBHD", "RBHD", "LTRAGUS", "RTRAGUS", "C7", "LSHO",
                   "RSHO", "LASI", "RASI", "LPSI", "RPSI")


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


def _trapz(a, dt):
    return float(dt * (a.sum() - 0.5 * (a[0] + a[-1])))


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
    A2 = (v_to - _trapz(base, dt)) / _trapz(unit, dt)
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
    A3 = (-v_to - _trapz(seg, dt)) / _trapz(unit3, dt)
    land = q3 + A3 * p3
    settle = _sway(rng, int(np.rint(1.0 * rate_hz)), dt, 0.05)
    accel = np.concatenate([accel, flight, land, settle])
    fz = np.maximum(mass_kg * (G + accel), 0.0)
    n = len(fz)
    forces, cops = _feet_forces(fz, lsi_pct, weak_side, mass_kg, rng, n)
    in_air = fz <= 0.0
    for f in forces:
        f[in_air] = 0.0
    return Trial(
        analog_rate_hz=rate_hz, point_rate_hz=rate_hz / 5,
        forces=forces, cops=cops, plates=[0, 1],
        truth={
            "body_mass_kg": mass_kg, "takeoff_velocity_m_s": v_to,
            "jump_height_m": v_to**2 / (2 * G), "flight_time_s": n_flight * dt,
            "takeoff_s": i_to * dt, "landing_s": (i_to + n_flight) * dt,
            "movement_onset_s": n_q * dt, "quiet_s": n_q * dt, "lsi_pct": lsi_pct,
        },
    )


def _leg_chain(ankle, theta_deg, flex_deg, side, hip_y, L1, L2):
    """Knee and hip positions for a planted ankle, exact FPPA, fixed hip y.

    The shank (ankle -> knee) and thigh (knee -> hip) tilt forward/backward by half
    the knee flexion each; in the frontal (Y-Z) plane they tilt by ``phi2`` (medially,
    going up) and ``phi1`` (laterally) with ``phi1 + phi2 = theta`` (the FPPA, positive
    = knee medial to the hip-ankle line = valgus). ``phi1`` is solved so the hip stays
    at ``hip_y``: ``L1 c1 sin(phi1) - L2 c2 sin(theta - phi1) = s (hip_y - ankle_y)``.

    Parameters
    ----------
    ankle : ndarray, shape (n, 3)
    theta_deg, flex_deg : ndarray, shape (n,)
    side : {+1, -1}
        +1 left leg (medial is -Y), -1 right leg (medial is +Y).
    """
    th = np.radians(theta_deg)
    psi = np.radians(flex_deg) / 2.0
    c1 = L1 * np.cos(psi)
    c2 = L2 * np.cos(psi)
    d = side * (hip_y - ankle[:, 1])
    P = c1 + c2 * np.cos(th)
    Q = c2 * np.sin(th)
    phi1 = np.arctan2(Q, P) + np.arcsin(d / np.hypot(P, Q))
    phi2 = th - phi1
    shank = np.column_stack([L2 * np.sin(psi), -side * c2 * np.sin(phi2), c2 * np.cos(phi2)])
    thigh = np.column_stack([-L1 * np.sin(psi), side * c1 * np.sin(phi1), c1 * np.cos(phi1)])
    knee = ankle + shank
    return knee, knee + thigh


def landing_trial(rng, /, *, mass_kg, height_m, peak_force_bw, lsi_pct, weak_side,
                  fppa_left_deg, fppa_right_deg, rate_hz=1000.0, point_rate_hz=200.0):
    """A drop landing from a 30 cm box onto plates 1 and 2, with lower-limb markers.

    Parameters
    ----------
    mass_kg, height_m : float
        Body mass (kg) and height (m); segment lengths follow Winter (2009): thigh
        0.245 H, shank 0.246 H, ankle height 0.039 H.
    peak_force_bw : float
        Peak total vertical force, multiples of body weight (exact on the samples).
    lsi_pct : float
        Weak/strong x 100 of the plates' forces (hence of the per-side peaks).
    weak_side : {"left", "right"}
    fppa_left_deg, fppa_right_deg : float
        Peak knee FPPA of each leg, deg (positive = valgus), reached at the frame of
        peak knee flexion; FPPA(t) = peak x (flexion(t) - 10) / (peak flexion - 10).
    rate_hz, point_rate_hz : float
        Analog and marker rates, Hz (``rate_hz`` a multiple of ``point_rate_hz``).

    Returns
    -------
    Trial
        Markers :data:`LOWER_LIMB_MARKERS`; ``truth``: ``peak_force_bw``,
        ``peak_force_n``, ``lsi_pct``, ``contact_s``, ``peak_flexion_s``,
        ``knee_fppa_peak_deg`` ``{"left", "right"}``, ``drop_height_m``,
        ``contact_velocity_m_s``.

    Notes
    -----
    Vertical acceleration: 0.5 s on the box (plates unloaded), free fall from 0.30 m
    (contact velocity ``sqrt(2 g 0.30)``), then ``a = -g (1 - E_out(tau / 0.1)) + A1 h1 + A2 h2``
    over 0.35-0.45 s with an early impact spike ``h1`` and a broad absorption hump
    ``h2``; ``A2`` makes the momentum balance exact and ``A1`` (bisection) the peak.
    Then 2.5 s of quiet standing.
    """
    ratio = int(np.rint(rate_hz / point_rate_hz))
    dt = 1.0 / rate_hz
    n_box = int(np.rint(0.5 * rate_hz))
    n_fall = int(np.rint(np.sqrt(2.0 * DROP_HEIGHT_M / G) * rate_hz))
    n_fall -= (n_box + n_fall) % ratio  # contact on a marker frame
    drop_h = 0.5 * G * (n_fall * dt) ** 2  # the fall actually simulated, ~0.30 m
    t_l = rng.uniform(0.35, 0.45)
    tau = np.arange(0, int(np.rint(t_l * rate_hz)) + 1) * dt / t_l
    q = -G * (1.0 - _ease_out(tau / 0.1))
    h1 = np.exp(-0.5 * ((tau - 0.09) / 0.035) ** 2) * np.sin(np.pi * np.minimum(tau / 0.3, 1))
    h2 = np.sin(np.pi * tau) ** 2
    v_contact = -G * n_fall * dt  # velocity at the contact sample (free fall from rest)

    def solve(A1):
        a = q + A1 * h1
        A2 = (-v_contact - _trapz(a, dt)) / _trapz(h2, dt)
        return a + A2 * h2

    lo, hi = 0.0, 200.0
    target = peak_force_bw * G - G  # peak of a, m/s^2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if solve(mid).max() < target else (lo, mid)
    land = solve(0.5 * (lo + hi))
    n_stand = int(np.rint(2.5 * rate_hz))
    n_stand += (-(n_box + n_fall + len(land) + n_stand)) % ratio
    stand = _sway(rng, n_stand, dt, 0.03)
    fz = np.concatenate([np.zeros(n_box + n_fall), mass_kg * (G + land), mass_kg * (G + stand)])
    fz = np.maximum(fz, 0.0)
    n = len(fz)
    forces, cops = _feet_forces(fz, lsi_pct, weak_side, mass_kg, rng, n)
    for f in forces:
        f[fz <= 0.0] = 0.0
    i_c = n_box + n_fall

    # --- markers at point rate ---------------------------------------------------
    nf = n // ratio
    t = np.arange(nf) / point_rate_hz
    t_c = i_c * dt
    t_flex = round(rng.uniform(0.18, 0.24) * point_rate_hz) / point_rate_hz
    k_pk = rng.uniform(60.0, 80.0)
    k0, k_end = 10.0, 20.0
    u_up = (t - t_c) / t_flex
    u_dn = (t - t_c - t_flex) / 0.6
    rise = k0 + (k_pk - k0) * np.sin(0.5 * np.pi * np.clip(u_up, 0, 1)) ** 2
    fall_k = k_pk - (k_pk - k_end) * _smoothstep(u_dn)
    flex = np.where(t <= t_c + t_flex, rise, fall_k)
    frac = (flex - k0) / (k_pk - k0)
    z_off = np.where(t < n_box * dt, drop_h,
                     np.maximum(drop_h - 0.5 * G * (t - n_box * dt) ** 2, 0.0))
    z_off[t >= t_c - 1e-12] = 0.0
    L1, L2, ha = 0.245 * height_m, 0.246 * height_m, 0.039 * height_m
    pts = {}
    for side, lab, fppa in ((1.0, "L", fppa_left_deg), (-1.0, "R", fppa_right_deg)):
        ankle = np.column_stack([np.zeros(nf), np.full(nf, side * FOOT_Y_M), ha + z_off])
        knee, hip = _leg_chain(ankle, fppa * frac, flex, side, side * 0.09, L1, L2)
        pts[f"{lab}AJC"] = ankle
        pts[f"{lab}KJC"] = knee
        pts[f"{lab}HJC"] = hip
        pts[f"{lab}ANK"] = ankle + np.array([0.0, side * 0.035, 0.0])
        pts[f"{lab}KNE"] = knee + np.array([0.0, side * 0.05, 0.0])
        pts[f"{lab}HEE"] = ankle + np.array([-0.07, 0.0, -0.03])
        pts[f"{lab}TOE"] = ankle + np.array([0.15, 0.0, -0.025])
        pts[f"{lab}ASI"] = hip + np.array([0.055, side * 0.035, 0.075])
        pts[f"{lab}PSI"] = hip + np.array([-0.13, -side * 0.045, 0.1])
    labels = LOWER_LIMB_MARKERS
    markers = np.stack([pts[lab] for lab in labels], axis=1)
    i_pk = int(np.argmax(flex))
    return Trial(
        analog_rate_hz=rate_hz, point_rate_hz=point_rate_hz,
        forces=forces, cops=cops, plates=[0, 1], markers=markers, marker_labels=labels,
        truth={
            "peak_force_bw": float(fz.max() / (mass_kg * G)), "peak_force_n": float(fz.max()),
            "lsi_pct": lsi_pct, "contact_s": t_c, "peak_flexion_s": float(t[i_pk]),
            "knee_fppa_peak_deg": {"left": float(fppa_left_deg), "right": float(fppa_right_deg)},
            "drop_height_m": drop_h, "contact_velocity_m_s": -v_contact,
        },
    )


def balance_trial(rng, /, *, mass_kg, mean_velocity_m_s, stance, rate_hz=100.0,
                  duration_s=30.0):
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
        analog_rate_hz=rate_hz, point_rate_hz=rate_hz,
        forces=[np.column_stack([fx, fy, fz])], cops=[cop], plates=[0],
        truth={
            "mean_velocity_m_s": float(np.hypot(np.diff(ap), np.diff(ml)).sum()
                                       / (n / rate_hz)),
            "rms_ap_m": float(np.sqrt(np.mean(ap**2))), "rms_ml_m": float(np.sqrt(np.mean(ml**2))),
            "ellipse_area_m2": float(np.pi * 5.991464547107979 * np.sqrt(np.linalg.det(cov))),
            "stance": stance,
        },
    )


def posture_trial(rng, /, *, height_m, cva_deg, protraction_m, pelvic_tilt_deg,
                  point_rate_hz=200.0, duration_s=2.0):
    """Quiet standing markers with an exact craniovertebral angle.

    Parameters
    ----------
    height_m : float
    cva_deg : float
        Angle at C7 between the horizontal and the C7 -> tragus line in the sagittal
        (X-Z) plane, deg; lower = more forward head (Yip et al. 2008).
    protraction_m : tuple of float
        (left, right) anterior distance of the acromion (LSHO/RSHO) from C7 along X, m.
    pelvic_tilt_deg : float
        Angle of the PSIS -> ASIS line below the horizontal, deg (positive = anterior).

    Returns
    -------
    Trial
        No plates; markers :data:`POSTURE_MARKERS` at ``point_rate_hz``; ``truth``:
        ``cva_deg``, ``shoulder_protraction_m`` ``{"left", "right"}``,
        ``pelvic_tilt_deg``.

    Notes
    -----
    All markers translate together with a smooth sway of a few millimetres, so every
    frame has the same CVA, protraction and tilt.
    """
    nf = int(np.rint(duration_s * point_rate_hz))
    s = height_m / 1.75
    c7 = np.array([-0.06, 0.0, 0.818 * height_m])
    d = 0.11 * s
    a = np.radians(cva_deg)
    trag = c7 + np.array([d * np.cos(a), 0.0, d * np.sin(a)])
    tilt = np.radians(pelvic_tilt_deg)
    asis_mid = np.array([0.06, 0.0, 0.53 * height_m])
    psis_mid = asis_mid - 0.15 * s * np.array([np.cos(tilt), 0.0, -np.sin(tilt)])
    pl, pr = protraction_m
    offsets = {  # (anchor, dx, dy, dz), m, scaled with height
        "LTRAGUS": (trag, 0, 0.075, 0), "RTRAGUS": (trag, 0, -0.075, 0),
        "LFHD": (trag, 0.09, 0.055, 0.05), "RFHD": (trag, 0.09, -0.055, 0.05),
        "LBHD": (trag, -0.07, 0.05, 0.07), "RBHD": (trag, -0.07, -0.05, 0.07),
        "C7": (c7, 0, 0, 0),
        "LSHO": (c7, pl / s, 0.18, -0.03), "RSHO": (c7, pr / s, -0.18, -0.03),
        "LASI": (asis_mid, 0, 0.12, 0), "RASI": (asis_mid, 0, -0.12, 0),
        "LPSI": (psis_mid, 0, 0.045, 0), "RPSI": (psis_mid, 0, -0.045, 0),
    }
    pos = {k: anchor + s * np.array(d) for k, (anchor, *d) in offsets.items()}
    base = np.stack([pos[k] for k in POSTURE_MARKERS])
    t = np.arange(nf) / point_rate_hz
    ph = rng.uniform(0, 2 * np.pi, 2)
    sway = np.column_stack([0.004 * np.sin(2 * np.pi * 0.3 * t + ph[0]),
                            0.003 * np.sin(2 * np.pi * 0.2 * t + ph[1]), np.zeros(nf)])
    markers = base[None, :, :] + sway[:, None, :]
    return Trial(
        analog_rate_hz=0.0, point_rate_hz=point_rate_hz, markers=markers,
        marker_labels=POSTURE_MARKERS,
        truth={"cva_deg": float(cva_deg),
               "shoulder_protraction_m": {"left": float(pl), "right": float(pr)},
               "pelvic_tilt_deg": float(pelvic_tilt_deg)},
    )
