"""Generated trials with markers: a drop landing with an exact knee FPPA, posture with an exact CVA.

Same conventions as :mod:`cxlab.synth.signals` (lab frame Z up, +X anterior, +Y the
subject's left; SI units). Segment proportions follow Winter (2009).
"""

from __future__ import annotations

import numpy as np

from cxlab.synth.signals import (
    FOOT_Y_M,
    G,
    Trial,
    _ease_out,
    _feet_forces,
    _smoothstep,
    _sway,
)

__all__ = [
    "DROP_HEIGHT_M",
    "LOWER_LIMB_MARKERS",
    "POSTURE_MARKERS",
    "landing_trial",
    "posture_trial",
]

DROP_HEIGHT_M = 0.30
LOWER_LIMB_MARKERS = (
    "LASI",
    "RASI",
    "LPSI",
    "RPSI",
    "LHJC",
    "RHJC",
    "LKNE",
    "RKNE",
    "LKJC",
    "RKJC",
    "LANK",
    "RANK",
    "LAJC",
    "RAJC",
    "LHEE",
    "RHEE",
    "LTOE",
    "RTOE",
)
POSTURE_MARKERS = (
    "LFHD",
    "RFHD",
    "LBHD",
    "RBHD",
    "LTRAGUS",
    "RTRAGUS",
    "C7",
    "LSHO",
    "RSHO",
    "LASI",
    "RASI",
    "LPSI",
    "RPSI",
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


def landing_trial(
    rng,
    /,
    *,
    mass_kg,
    height_m,
    peak_force_bw,
    lsi_pct,
    weak_side,
    fppa_left_deg,
    fppa_right_deg,
    rate_hz=1000.0,
    point_rate_hz=200.0,
):
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
        A2 = (-v_contact - np.trapezoid(a, dx=dt)) / np.trapezoid(h2, dx=dt)
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
    z_off = np.where(
        t < n_box * dt, drop_h, np.maximum(drop_h - 0.5 * G * (t - n_box * dt) ** 2, 0.0)
    )
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
        analog_rate_hz=rate_hz,
        point_rate_hz=point_rate_hz,
        forces=forces,
        cops=cops,
        plates=[0, 1],
        markers=markers,
        marker_labels=labels,
        truth={
            "peak_force_bw": float(fz.max() / (mass_kg * G)),
            "peak_force_n": float(fz.max()),
            "lsi_pct": lsi_pct,
            "contact_s": t_c,
            "peak_flexion_s": float(t[i_pk]),
            "knee_fppa_peak_deg": {"left": float(fppa_left_deg), "right": float(fppa_right_deg)},
            "drop_height_m": drop_h,
            "contact_velocity_m_s": -v_contact,
        },
    )


def posture_trial(
    rng,
    /,
    *,
    height_m,
    cva_deg,
    protraction_m,
    pelvic_tilt_deg,
    point_rate_hz=200.0,
    duration_s=2.0,
):
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
        "LTRAGUS": (trag, 0, 0.075, 0),
        "RTRAGUS": (trag, 0, -0.075, 0),
        "LFHD": (trag, 0.09, 0.055, 0.05),
        "RFHD": (trag, 0.09, -0.055, 0.05),
        "LBHD": (trag, -0.07, 0.05, 0.07),
        "RBHD": (trag, -0.07, -0.05, 0.07),
        "C7": (c7, 0, 0, 0),
        "LSHO": (c7, pl / s, 0.18, -0.03),
        "RSHO": (c7, pr / s, -0.18, -0.03),
        "LASI": (asis_mid, 0, 0.12, 0),
        "RASI": (asis_mid, 0, -0.12, 0),
        "LPSI": (psis_mid, 0, 0.045, 0),
        "RPSI": (psis_mid, 0, -0.045, 0),
    }
    pos = {k: anchor + s * np.array(d) for k, (anchor, *d) in offsets.items()}
    base = np.stack([pos[k] for k in POSTURE_MARKERS])
    t = np.arange(nf) / point_rate_hz
    ph = rng.uniform(0, 2 * np.pi, 2)
    sway = np.column_stack(
        [
            0.004 * np.sin(2 * np.pi * 0.3 * t + ph[0]),
            0.003 * np.sin(2 * np.pi * 0.2 * t + ph[1]),
            np.zeros(nf),
        ]
    )
    markers = base[None, :, :] + sway[:, None, :]
    return Trial(
        analog_rate_hz=0.0,
        point_rate_hz=point_rate_hz,
        markers=markers,
        marker_labels=POSTURE_MARKERS,
        truth={
            "cva_deg": float(cva_deg),
            "shoulder_protraction_m": {"left": float(pl), "right": float(pr)},
            "pelvic_tilt_deg": float(pelvic_tilt_deg),
        },
    )
