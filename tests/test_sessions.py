"""io.sessions.session_order: the one natural sort of session labels."""

import pandas as pd

from cxlab.io.sessions import session_order


def test_numbers_sort_by_value_not_text():
    assert session_order(pd.Series(["10", "2", "1.5", "2"])).tolist() == [2, 1, 0, 1]


def test_labels_sort_naturally_digit_runs_as_integers():
    labels = pd.Series(["s10", "s2", "S1", "visit 9", "Visit 10", "post", "pre"])
    order = session_order(labels)
    assert list(labels[order.argsort()]) == [
        "post",
        "pre",
        "S1",
        "s2",
        "s10",
        "visit 9",
        "Visit 10",
    ]


def test_rank_is_dense_aligned_and_empty_input_is_empty():
    s = pd.Series(["b", "a", "b"], index=[7, 8, 9])
    assert session_order(s).to_dict() == {7: 1, 8: 0, 9: 1}
    assert session_order(pd.Series([], dtype=str)).tolist() == []
