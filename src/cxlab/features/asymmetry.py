"""Between-limb asymmetry indices, vectorised, and an asymmetry table for long feature tables.

Three indices, each with a documented behaviour near zero and for signed quantities:

==========================  ===========================================  ==================
index                       formula                                      symmetric value
==========================  ===========================================  ==================
limb symmetry index (LSI)   100 · involved / uninvolved                  100 %
symmetry index (Robinson)   100 · (R − L) / (0.5 · (R + L))              0 %
symmetry angle (Zifchock)   (45° − arctan(L/R)) / 90° · 100              0 %
==========================  ===========================================  ==================

The feature table's ``X_lsi_pct`` is :func:`weaker_limb_lsi`, the LSI with the weaker
(smaller-magnitude) side as "involved" (``100·min/max``), and ``X_asym_pct`` uses the
Robinson index (docs/conventions.md). Every LSI in cxlab (jump, battery, IMTP, strength,
EMG, the athlete page) comes from this module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "asymmetry_table",
    "limb_symmetry_index",
    "symmetry_angle",
    "symmetry_index",
    "weaker_limb_lsi",
]


def limb_symmetry_index(involved, uninvolved, /):
    """Limb symmetry index ``LSI = 100 · involved / uninvolved``, %.

    Parameters
    ----------
    involved, uninvolved : array_like
        The same quantity for the involved (or weaker) and uninvolved limb, any unit.

    Returns
    -------
    ndarray or float
        LSI in %; 100 = symmetric. **Near zero**: NaN where ``uninvolved == 0``; the
        index explodes as ``uninvolved → 0``, so use it only for quantities well away
        from zero (strength, hop distance, impulse). **Signed quantities**: NaN where the
        two values have opposite signs (a ratio across zero has no meaning); for two
        negative values the ratio of magnitudes is returned.
    """
    a = np.asarray(involved, dtype=float)
    b = np.asarray(uninvolved, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((b != 0) & (np.sign(a) * np.sign(b) >= 0), 100.0 * a / b, np.nan)
    return out[()] if out.ndim == 0 else out


def weaker_limb_lsi(left, right, /):
    """LSI of the weaker limb, ``100 · min(|L|, |R|) / max(|L|, |R|)``, %.

    The limb symmetry index (Noyes, Barber & Mangine 1991, *Am J Sports Med* 19:513–518)
    with the limb of smaller magnitude taken as involved, when neither is known:
    :func:`limb_symmetry_index` of (weaker, stronger).

    Parameters
    ----------
    left, right : array_like, same shape
        The same quantity for each limb, any unit.

    Returns
    -------
    ndarray or float
        LSI in %, within [0, 100]; 100 = symmetric. **Near zero**: NaN where both are 0.
        **Signed quantities**: NaN for opposite signs; for two negative values the ratio of
        magnitudes (``L = −6, R = −3`` → 50 %).
    """
    lv = np.asarray(left, dtype=float)
    rv = np.asarray(right, dtype=float)
    weak_left = np.abs(lv) <= np.abs(rv)
    return limb_symmetry_index(np.where(weak_left, lv, rv), np.where(weak_left, rv, lv))


def symmetry_index(left, right, /):
    """Robinson symmetry index ``SI = 100 · (R − L) / (0.5 · (R + L))``, %.

    Robinson, Herzog & Nigg (1987), *J Manipulative Physiol Ther* 10:172–176.

    Parameters
    ----------
    left, right : array_like
        The same quantity for each limb, any unit.

    Returns
    -------
    ndarray or float
        SI in %, positive when the right value is larger, within [−200, 200] for values
        of one sign. **Near zero**: NaN where ``R + L == 0``; the index is unstable when
        ``R + L`` is small relative to ``R − L``. **Signed quantities**: with opposite
        signs ``|SI| > 200`` and the sign no longer says which limb is larger — prefer
        :func:`symmetry_angle` or a plain difference for signed measures.
    """
    lv = np.asarray(left, dtype=float)
    rv = np.asarray(right, dtype=float)
    den = 0.5 * (rv + lv)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den != 0, 100.0 * (rv - lv) / den, np.nan)
    return out[()] if out.ndim == 0 else out


def symmetry_angle(left, right, /):
    """Symmetry angle ``SA = (45° − arctan(L/R)) / 90° · 100``, % (Zifchock et al. 2008).

    Zifchock, Davis, Higginson & Royer (2008), *Hum Mov Sci* 27:763–774. Implemented
    with ``arctan2(L, R)`` so ``R = 0`` is defined (``L > 0, R = 0`` → −50 %); when
    ``45° − arctan2`` exceeds 90° (values of opposite sign), 180° is subtracted, and
    added when it is below −90°, as in the paper, keeping SA within [−100, 100] %.

    Parameters
    ----------
    left, right : array_like
        The same quantity for each limb.

    Returns
    -------
    ndarray or float
        SA in %, 0 = symmetric, positive when the right value is larger (for positive
        values). **Near zero**: bounded, unlike the ratio indices; NaN only where both
        values are 0. **Signed quantities**: defined for any signs; ±100 % means equal
        magnitude and opposite sign.
    """
    lv = np.asarray(left, dtype=float)
    rv = np.asarray(right, dtype=float)
    ang = 45.0 - np.degrees(np.arctan2(lv, rv))
    ang = np.where(ang > 90.0, ang - 180.0, np.where(ang < -90.0, ang + 180.0, ang))
    out = np.where((lv == 0) & (rv == 0), np.nan, ang / 90.0 * 100.0)
    return out[()] if out.ndim == 0 else out


def asymmetry_table(
    df: pd.DataFrame,
    /,
    *,
    by=("recording_id",),
    features=None,
    involved_side: str | None = None,
) -> pd.DataFrame:
    """Signed asymmetry, magnitude and dominant side for every bilateral feature.

    Parameters
    ----------
    df : pandas.DataFrame
        Long features table (columns ``feature``, ``side``, ``value`` and the ``by``
        columns); rows with side ``left`` and ``right`` of the same feature pair up.
    by : sequence of str
        Columns identifying one measurement (default the recording).
    features : list of str, optional
        Restrict to these feature names.
    involved_side : {"left", "right"}, optional
        If given, ``lsi_pct = 100 · involved / uninvolved``; default the smaller over the
        larger magnitude (``100 · min / max`` for positive values; NaN for opposite signs).

    Returns
    -------
    pandas.DataFrame
        One row per ``by`` × feature with both sides: the ``by`` columns, ``feature``,
        ``left``, ``right``, ``asym_pct`` (Robinson SI, signed, + = right larger),
        ``asym_abs_pct`` (its magnitude), ``symmetry_angle_pct``, ``lsi_pct`` and
        ``dominant_side`` (``left``/``right`` with the larger value, ``none`` if equal).
    """
    by = list(by)
    d = df[df["side"].isin(["left", "right"])]
    if features is not None:
        d = d[d["feature"].isin(list(features))]
    wide = d.pivot_table(
        index=[*by, "feature"], columns="side", values="value", aggfunc="mean", dropna=False
    ).reset_index()
    for s in ("left", "right"):
        if s not in wide:
            wide[s] = np.nan
    wide = wide.dropna(subset=["left", "right"]).reset_index(drop=True)
    wide.columns.name = None
    lv, rv = wide["left"].to_numpy(float), wide["right"].to_numpy(float)
    wide["asym_pct"] = symmetry_index(lv, rv)
    wide["asym_abs_pct"] = np.abs(wide["asym_pct"])
    wide["symmetry_angle_pct"] = symmetry_angle(lv, rv)
    if involved_side == "left":
        wide["lsi_pct"] = limb_symmetry_index(lv, rv)
    elif involved_side == "right":
        wide["lsi_pct"] = limb_symmetry_index(rv, lv)
    else:
        wide["lsi_pct"] = weaker_limb_lsi(lv, rv)
    wide["dominant_side"] = np.where(rv > lv, "right", np.where(lv > rv, "left", "none"))
    return wide[
        [
            *by,
            "feature",
            "left",
            "right",
            "asym_pct",
            "asym_abs_pct",
            "symmetry_angle_pct",
            "lsi_pct",
            "dominant_side",
        ]
    ]
