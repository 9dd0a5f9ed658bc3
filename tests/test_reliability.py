import numpy as np
import pandas as pd
import pytest

from cxlab import ConfigError, CxlabWarning
from cxlab.models import reliability

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SF = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
# Reference values from pingouin 0.7.0 `intraclass_corr(df, 't', 'j', 'v')` on SF, run once in
# a throwaway venv (pingouin is not a dependency). ICC, F, p at full precision; pingouin
# rounds its CI95 to 2 decimals.
PG_ICC = [
    0.1657417684054755,
    0.28976377952755916,
    0.7148407148407154,
    0.44279713367926876,
    0.6200505475989893,
    0.9093155423770697,
]
PG_F = [
    1.7946784922394683,
    11.027247956403299,
    11.027247956403299,
    1.7946784922394683,
    11.027247956403299,
    11.027247956403299,
]
PG_P = [
    0.16476880834463953,
    0.000134566516484335,
    0.000134566516484335,
    0.16476880834463953,
    0.000134566516484335,
    0.000134566516484335,
]
PG_DF2 = [18, 15, 15, 18, 15, 15]
PG_CI = [(-0.13, 0.72), (0.02, 0.76), (0.34, 0.95), (-0.88, 0.91), (0.07, 0.93), (0.68, 0.99)]


def _long(x):
    return pd.DataFrame(
        [(f"t{t}", f"j{j}", float(v)) for t, row in enumerate(x) for j, v in enumerate(row)],
        columns=["target", "judge", "rating"],
    )


def test_icc_matches_shrout_fleiss_table_2():
    out = reliability(_long(SF), targets="target", raters="judge", ratings="rating")
    assert out["type"].tolist() == [
        "ICC(1,1)",
        "ICC(2,1)",
        "ICC(3,1)",
        "ICC(1,k)",
        "ICC(2,k)",
        "ICC(3,k)",
    ]
    # Published two-decimal values (Shrout & Fleiss 1979, Table 2).
    assert out["icc"].round(2).tolist() == [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]


def test_icc_f_p_and_ci_match_pingouin():
    out = reliability(_long(SF), targets="target", raters="judge", ratings="rating")
    np.testing.assert_allclose(out["icc"], PG_ICC, rtol=1e-12)
    np.testing.assert_allclose(out["f"], PG_F, rtol=1e-12)
    np.testing.assert_allclose(out["p_value"], PG_P, rtol=1e-9)
    assert out["df1"].tolist() == [5.0] * 6 and out["df2"].tolist() == PG_DF2
    np.testing.assert_allclose(out[["ci_low", "ci_high"]].round(2).to_numpy(), PG_CI, atol=1e-12)


def test_typical_error_is_sd_of_differences_over_root_two_for_two_trials():
    rng = np.random.default_rng(1)
    true = rng.normal(50, 8, 20)
    t1, t2 = true + rng.normal(0, 2, 20), true + 1.5 + rng.normal(0, 2, 20)
    df = pd.DataFrame(
        {
            "s": np.repeat(np.arange(20), 2),
            "trial": np.tile([1, 2], 20),
            "v": np.column_stack([t1, t2]).ravel(),
        }
    )
    out = reliability(df, targets="s", raters="trial", ratings="v").iloc[0]
    assert out["typical_error"] == pytest.approx(np.std(t2 - t1, ddof=1) / np.sqrt(2), rel=1e-12)
    # SEM from the one-way within-subject mean square keeps the 1.5-unit learning effect:
    # MSW = sum((x - subject mean)^2) / (n (k - 1)) = sum(d^2) / (2 n) for two trials.
    d = t2 - t1
    assert out["sem"] == pytest.approx(np.sqrt(np.sum(d**2) / (2 * 20)), rel=1e-12)
    assert out["mdc95"] == pytest.approx(1.96 * np.sqrt(2) * out["sem"], rel=1e-12)
    assert out["swc"] == pytest.approx(0.2 * np.std((t1 + t2) / 2, ddof=1), rel=1e-12)


def test_by_groups_give_one_block_per_feature():
    a, b = _long(SF).assign(feature="a"), _long(SF).assign(feature="b")
    b["rating"] *= 2.0
    out = reliability(
        pd.concat([b, a]), targets="target", raters="judge", ratings="rating", by="feature"
    )
    assert out["feature"].tolist() == ["a"] * 6 + ["b"] * 6
    np.testing.assert_allclose(out["icc"].iloc[:6], out["icc"].iloc[6:], rtol=1e-12)
    np.testing.assert_allclose(out["sem"].iloc[6:], 2 * out["sem"].iloc[:6].to_numpy())


def test_incomplete_target_is_dropped_with_a_warning():
    df = _long([*SF, [5, 5, 5, 5]])
    df = df[~((df["target"] == "t6") & (df["judge"] == "j2"))]
    with pytest.warns(CxlabWarning, match="dropped 1 target"):
        out = reliability(df, targets="target", raters="judge", ratings="rating")
    np.testing.assert_allclose(out["icc"], PG_ICC, rtol=1e-12)


def test_bad_input_names_the_column():
    with pytest.raises(ConfigError, match="score"):
        reliability(_long(SF), targets="target", raters="judge", ratings="score")
    df = _long(SF).assign(rating=lambda d: d["rating"].astype(str))
    with pytest.raises(ConfigError, match="rating: must be numeric"):
        reliability(df, targets="target", raters="judge", ratings="rating")
    with pytest.raises(ConfigError, match="at least 2 complete targets"):
        reliability(_long(SF[:1]), targets="target", raters="judge", ratings="rating")
