"""Movement smoothness (SPARC, LDLJ) and gait timing symmetry.

Speeds and accelerations are arrays of shape ``(n_samples,)`` (or ``(n_samples, d)`` for
LDLJ: the norm over ``d`` is used) in SI units sampled at ``rate_hz``.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from cxlab._check import check_option
from cxlab.features.asymmetry import symmetry_index
from cxlab.features.events import FeatureError

__all__ = ["gait_events", "gait_timing", "ldlj", "sparc"]


def sparc(
    speed, /, *, rate_hz: float, pad_level: int = 4, fc_hz: float = 10.0, amp_th: float = 0.05
) -> float:
    """Spectral arc length of a speed profile (Balasubramanian et al. 2015).

    Balasubramanian, Melendez-Calderon, Roby-Brami & Burdet (2015), *J NeuroEng Rehabil*
    12:112. The magnitude spectrum ``|V(f)|`` (zero-padded FFT of length
    ``2^(ceil(log2 n) + pad_level)``) is normalised by its maximum, cut at the adaptive
    frequency ``ω_c`` = the highest ``f ≤ fc_hz`` with ``|V̂(f)| ≥ amp_th``, and

        SPARC = −Σ sqrt((Δf / ω_c)² + (Δ|V̂|)²)

    over ``[0, ω_c]`` (their Eq. 4). Smoother movements have values closer to 0
    (less negative); a single minimum-jerk speed profile gives −1.41 with these defaults
    (tests/test_efficiency.py; the often-quoted ≈ −1.6 is for other cut-off settings).

    Parameters
    ----------
    speed : array_like, shape (n_samples,)
        Speed profile (m/s, any unit: SPARC is dimensionless).
    rate_hz : float
        Sample rate, Hz.
    pad_level, fc_hz, amp_th
        The published defaults: 4, 10 Hz, 0.05.

    Returns
    -------
    float
        SPARC (dimensionless, ≤ 0).
    """
    v = np.asarray(speed, dtype=float)
    nfft = int(2 ** (np.ceil(np.log2(v.size)) + pad_level))
    mag = np.abs(np.fft.rfft(v, nfft))
    f = np.arange(mag.size) * rate_hz / nfft
    mag = mag / mag.max()
    sel = f <= fc_hz
    f, mag = f[sel], mag[sel]
    above = np.flatnonzero(mag >= amp_th)
    f, mag = f[above[0] : above[-1] + 1], mag[above[0] : above[-1] + 1]
    if f.size < 2:
        return 0.0
    return float(-np.sqrt((np.diff(f) / (f[-1] - f[0])) ** 2 + np.diff(mag) ** 2).sum())


def ldlj(x, /, *, rate_hz: float, kind: str = "velocity") -> float:
    """Log dimensionless jerk (Balasubramanian 2012; Melendez-Calderon et al. 2021).

    Melendez-Calderon, Shirota & Balasubramanian (2021), *Front Bioeng Biotechnol*
    8:558771 (their Eqs. 5–6), with ``T = t₂ − t₁`` the record duration:

    - ``kind="velocity"``: ``LDLJ-V = −ln( T³ / v_peak² · ∫ ‖d²v/dt²‖² dt )``;
    - ``kind="acceleration"``: ``LDLJ-A = −ln( T / a_peak² · ∫ ‖da/dt‖² dt )``.

    Derivatives by second-order central differences (``numpy.gradient``), integral by
    the trapezoidal rule. A minimum-jerk reach gives LDLJ-V = −ln(720 / 1.875²) = −5.32
    whatever its duration and amplitude.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, d)
        Velocity (m/s) or acceleration (m/s²) of the movement.
    rate_hz : float
        Sample rate, Hz.
    kind : {"velocity", "acceleration"}

    Returns
    -------
    float
        LDLJ (dimensionless); higher (less negative) = smoother.
    """
    check_option("kind", kind, ("velocity", "acceleration"))
    a = np.asarray(x, dtype=float)
    a = a[:, None] if a.ndim == 1 else a
    dt = 1.0 / rate_hz
    T = (a.shape[0] - 1) * dt
    j = np.gradient(a, dt, axis=0)
    if kind == "velocity":
        j = np.gradient(j, dt, axis=0)
    j2 = (j**2).sum(axis=1)
    integral = float(np.trapezoid(j2, dx=dt))
    peak = float(np.linalg.norm(a, axis=1).max())
    scale = T**3 / peak**2 if kind == "velocity" else T / peak**2
    return float(-np.log(scale * integral))


def gait_events(
    heel, toe, pelvis, /, *, rate_hz: float, axis: int = 0, min_step_s: float = 0.35
) -> dict[str, np.ndarray]:
    """Foot strikes and foot offs of one foot from markers (Zeni et al. 2008).

    Zeni, Richards & Higginson (2008), *Gait Posture* 27:710: a foot strike is a maximum
    of the heel's position relative to the pelvis along the walking direction, a foot
    off a minimum of the toe's. The walking direction is the sign of the pelvis's mean
    velocity along ``axis``.

    Parameters
    ----------
    heel, toe, pelvis : array_like, shape (n_frames, 3)
        Heel, toe and pelvis-centre trajectories, m.
    rate_hz : float
        Marker rate, Hz.
    axis : int
        Horizontal axis of progression (lab x).
    min_step_s : float
        Minimum time between two strikes of the same foot, s.

    Returns
    -------
    dict
        ``strike_s`` and ``off_s``: event times, s (ascending).
    """
    p = np.asarray(pelvis, float)[:, axis]
    direction = np.sign(np.nanmean(np.diff(p))) or 1.0
    rel_h = direction * (np.asarray(heel, float)[:, axis] - p)
    rel_t = direction * (np.asarray(toe, float)[:, axis] - p)
    dist = max(int(min_step_s * rate_hz), 1)
    return {
        "strike_s": _interior_peaks(rel_h, dist) / rate_hz,
        "off_s": _interior_peaks(-rel_t, dist) / rate_hz,
    }


def _interior_peaks(x: np.ndarray, distance: int) -> np.ndarray:
    """Maxima of ``x`` whose neighbours are both valid (a gap or record edge is no event)."""
    ok = np.isfinite(x)
    pk, _ = sps.find_peaks(np.where(ok, x, -np.inf), distance=distance)
    pk = pk[(pk > 0) & (pk < x.size - 1)]
    return pk[ok[pk - 1] & ok[pk + 1]]


def gait_timing(events: dict, /) -> dict[str, float]:
    """Mean step and stance times per side and their Robinson symmetry indices.

    Step time of a side = its foot strike − the preceding contralateral foot strike;
    stance time = its foot off − its preceding foot strike.

    Parameters
    ----------
    events : dict
        ``{"left": {"strike_s": ..., "off_s": ...}, "right": {...}}`` (s).

    Returns
    -------
    dict of str to float
        ``step_time_s_left/right``, ``stance_time_s_left/right`` (s),
        ``step_time_asym_pct`` and ``stance_time_asym_pct`` (% , + = right longer).

    Raises
    ------
    FeatureError
        If a side has no complete step or stance.
    """
    out = {}
    for side, other in (("left", "right"), ("right", "left")):
        hs = np.asarray(events[side]["strike_s"], float)
        ho = np.asarray(events[other]["strike_s"], float)
        off = np.asarray(events[side]["off_s"], float)
        prev = np.searchsorted(ho, hs) - 1
        steps = (hs - ho[np.clip(prev, 0, None)])[prev >= 0] if ho.size else np.array([])
        prev_hs = np.searchsorted(hs, off) - 1
        stance = (off - hs[np.clip(prev_hs, 0, None)])[prev_hs >= 0] if hs.size else []
        stance = np.asarray(stance)
        if steps.size == 0 or stance.size == 0:
            raise FeatureError(
                f"gait: no complete step and stance for the {side} foot "
                f"({hs.size} strikes, {off.size} offs)"
            )
        out[f"step_time_s_{side}"] = float(steps.mean())
        out[f"stance_time_s_{side}"] = float(stance.mean())
    out["step_time_asym_pct"] = float(
        symmetry_index(out["step_time_s_left"], out["step_time_s_right"])
    )
    out["stance_time_asym_pct"] = float(
        symmetry_index(out["stance_time_s_left"], out["stance_time_s_right"])
    )
    return out
