"""io._text.delimiter: the one delimiter sniffer every text reader uses."""

import pytest

from cxlab.io._text import WHITESPACE, delimiter


@pytest.mark.parametrize(
    ("line", "sep"),
    [
        ("Time,Left,Right", ","),
        ("Time;Fz;Fx", ";"),  # a comma-decimal locale's export
        ('"Fz, left";"Fz, right";"Fz, total";t', ";"),  # more ; than , in quoted names
        ("abs time (s)\tFx\tFy\tFz", "\t"),
        ("time\tfz, left", "\t"),  # a tie goes to tab
        ("a,b;c", ","),
        ("a;b,c", ","),  # a tie between ; and , goes to ,
        ("subject", ","),  # a one-column sheet
    ],
)
def test_delimiter_is_the_most_frequent_with_ties_to_tab_then_comma(line, sep):
    assert delimiter(line) == sep


def test_a_line_without_delimiters_falls_back_to_the_default():
    assert delimiter("Frame#  Time  LASI", default=WHITESPACE) == WHITESPACE
