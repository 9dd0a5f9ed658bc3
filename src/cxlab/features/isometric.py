"""Isometric mid-thigh pull (IMTP) and isometric squat metrics from vertical force.

Onset rule (stated once, used for every window): body weight ``BW`` and its SD are the
mean and SD of the steadiest ``window_s`` of quiet standing before the force first climbs
half way from the standing level to the peak (:func:`cxlab.features.events.quiet_standing`,
the "weighing" of Comfort et al. 2019);
the pull starts at the **first sample after that window where F > BW + 5 SD**
(Dos'Santos, Jones, Comfort & Thomas 2017, *J Strength Cond Res* 31:3463, who found
5 SD the most reliable of the thresholds they compared), without backtracking.

RFD over ``0–w`` ms is the average slope ``(F(onset + w) − F(onset)) / w`` (Haff, Ruben,
Lider, Twine & Cormie 2015, *J Strength Cond Res* 29:386); impulse over the same window
is the net impulse ``∫(F − BW) dt`` (trapezoidal rule). Peak force is reported gross (N),
net of body weight (N) and per kg of body mass (N/kg).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import cumulative_trapezoid

from cxlab._check import message
from cxlab.features.battery import side_asymmetry
from cxlab.features.events import FeatureError, quiet_standing
from cxlab.features.measure import Sided
from cxlab.units import G

__all__ = ["IMTP_METHODS", "IMTP_UNITS", "IMTP_WINDOWS_MS", "imtp_metrics"]

IMTP_WINDOWS_MS = (50, 100, 200)
IMTP_UNITS = {
    "body_mass_kg": "kg",
    "peak_force_n": "N",
    "peak_force_net_n": "N",
    "peak_force_n_kg": "N/kg",
    "peak_force_net_n_kg": "N/kg",
    "time_to_peak_force_s": "s",
    "onset_force_n": "N",
}
IMTP_METHODS = {
    "body_mass_kg": "export header weight if given, else mean force of steadiest 1 s / g",
    "peak_force_n": "max F (gross, includes body weight)",
    "peak_force_net_n": "max F - BW",
    "peak_force_n_kg": "max F / body mass",
    "peak_force_net_n_kg": "(max F - BW) / body mass",
    "time_to_peak_force_s": "time of max F - onset (first F > BW + 5 SD; Dos'Santos 2017)",
    "onset_force_n": "F at onset",
}
for _w in IMTP_WINDOWS_MS:
    IMTP_UNITS[f"rfd_0_{_w}_n_s"] = "N/s"
    IMTP_UNITS[f"impulse_0_{_w}_n_s"] = "N.s"
    IMTP_METHODS[f"rfd_0_{_w}_n_s"] = (
        f"(F(onset+{_w} ms) - F(onset)) / {_w} ms (Haff 2015; onset first F > BW + 5 SD)"
    )
    IMTP_METHODS[f"impulse_0_{_w}_n_s"] = f"net impulse of F - BW, onset..onset+{_w} ms"
for _q in ("peak_force_net", "rfd_0_100", "rfd_0_200", "impulse_0_100", "impulse_0_200"):
    IMTP_UNITS[f"{_q}_lsi_pct"] = "%"
    IMTP_UNITS[f"{_q}_asym_pct"] = "%"
    IMTP_METHODS[f"{_q}_lsi_pct"] = "100 min(L,R)/max(L,R); not computed near zero"
    IMTP_METHODS[f"{_q}_asym_pct"] = "100 (R-L)/(0.5(R+L)) (Robinson 1987); not near zero"


def _windows(f: np.ndarray, bw: float, onset: int, rate_hz: float, windows_ms) -> dict:
    """RFD and net impulse over each window from onset (NaN past the end of the record)."""
    dt = 1.0 / rate_hz
    n = np.array([round(w * rate_hz / 1000.0) for w in windows_ms])
    cum = cumulative_trapezoid(f[onset:] - bw, dx=dt, initial=0.0)
    out = {}
    for w, k in zip(windows_ms, n, strict=True):
        inside = onset + k < f.size
        out[f"rfd_0_{w}_n_s"] = (
            float((f[onset + k] - f[onset]) / (k * dt)) if inside else float("nan")
        )
        out[f"impulse_0_{w}_n_s"] = float(cum[k]) if inside else float("nan")
    return out


def imtp_metrics(
    fz,
    /,
    *,
    rate_hz: float,
    fz_left=None,
    fz_right=None,
    body_mass_kg: float | None = None,
    n_sd: float = 5.0,
    window_s: float = 1.0,
    windows_ms=IMTP_WINDOWS_MS,
) -> dict[str, float | Sided]:
    """IMTP / isometric-squat metrics of one pull.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Total vertical force, N: ≥ ``window_s`` of still standing on the plate (bar
        gripped, no pre-tension beyond body weight), then the maximal pull.
    rate_hz : float
        Sample rate, Hz (≥ 1000 Hz recommended for the 0–50 ms window).
    fz_left, fz_right : array_like, optional
        Force under each foot, N: per-side net peak force, RFD and impulse (each side
        from its own weighing share, common onset) with LSI and Robinson asymmetry.
    body_mass_kg : float, optional
        Known mass, kg (export header); BW for the net values is still the measured
        weighing force (the onset needs the plate's own zero), mass only divides.
    n_sd, window_s : float
        Onset threshold (SDs above BW) and weighing window (s).
    windows_ms : sequence of int
        RFD/impulse windows from onset, ms.

    Returns
    -------
    dict of str to float or Sided
        Keys of :data:`IMTP_UNITS` (``peak_force_n``, ``rfd_0_100_n_s``,
        ``impulse_0_200_n_s`` …). With both plates ``peak_force_net_n`` (N) and each
        window's ``rfd_0_<w>_n_s`` (N/s) and ``impulse_0_<w>_n_s`` (N·s) are a
        :class:`~cxlab.features.measure.Sided` (per foot, and the whole-body value). A
        window that runs past the record is NaN.

    Raises
    ------
    FeatureError
        No quiet weighing window before the peak, or force never rises above BW + n SD.
    """
    f = np.asarray(fz, dtype=float)
    peak = int(np.nanargmax(f))
    # The weighing must precede the pull: search only before the force first climbs half
    # way from the typical standing level to the peak (a held plateau is steady too).
    pre = f[:peak][f[:peak] > 100.0]
    level = float(np.median(pre)) if pre.size else 0.0
    rise = np.flatnonzero(f[: peak + 1] > level + 0.5 * (f[peak] - level))
    if rise[0] < round(window_s * rate_hz):
        raise FeatureError(
            message(
                f"force never rises above body weight after {window_s:g} s of weighing",
                field="isometric pull",
                value=f"peak {f[peak]:.1f} N at {peak / rate_hz:.3f} s",
                fix="record at least 1 s of still standing before the pull",
            )
        )
    qs = quiet_standing(f, rate_hz=rate_hz, window_s=window_s, stop=int(rise[0]))
    bw = qs.weight_n
    m = body_mass_kg if body_mass_kg is not None else bw / G
    above = np.flatnonzero(f[qs.stop : peak + 1] > bw + n_sd * qs.sd_n)
    if above.size == 0:
        raise FeatureError(
            message(
                f"force never rises {n_sd:g} SD above body weight after the weighing window",
                field="isometric pull",
                value=f"BW {bw:.1f} N, peak {f[peak]:.1f} N",
                fix="record at least 1 s of still standing before the pull",
            )
        )
    onset = qs.stop + int(above[0])
    out = {
        "body_mass_kg": m,
        "peak_force_n": float(f[peak]),
        "peak_force_net_n": float(f[peak] - bw),
        "peak_force_n_kg": float(f[peak]) / m,
        "peak_force_net_n_kg": float(f[peak] - bw) / m,
        "time_to_peak_force_s": (peak - onset) / rate_hz,
        "onset_force_n": float(f[onset]),
    } | _windows(f, bw, onset, rate_hz, windows_ms)
    if fz_left is not None and fz_right is not None:
        side = {}
        for s, fs in (("left", fz_left), ("right", fz_right)):
            fs = np.asarray(fs, dtype=float)
            bws = float(fs[qs.start : qs.stop].mean())
            side[s] = {"peak_force_net_n": float(fs[onset:].max() - bws)} | _windows(
                fs, bws, onset, rate_hz, windows_ms
            )
        for k in side["left"]:
            out[k] = Sided(side["left"][k], side["right"][k], out[k])
        net = float(f[peak] - bw)
        floors = {"peak_force_net": ("peak_force_net_n", 0.05 * net)}  # index -> feature
        for w in (100, 200):  # 0-50 ms per side is too close to zero to compare
            if w in windows_ms:
                floors[f"rfd_0_{w}"] = (f"rfd_0_{w}_n_s", 0.05 * net / (w / 1000.0))
                floors[f"impulse_0_{w}"] = (f"impulse_0_{w}_n_s", 0.05 * net * (w / 1000.0) / 2)
        for q, (k, floor) in floors.items():
            out |= side_asymmetry(q, out[k].left, out[k].right, floor=floor)
    return out
