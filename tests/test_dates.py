"""The synthetic date-translation corpus: every format by hand, names against the calendar, one answer per source."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from rnnkit.datasets.dates import DATE_FORMATS, MONTHS_EN, TWO_DIGIT_YEAR_FORMATS, WEEKDAYS_EN, date_pairs, format_date

SATURDAY = datetime.date(1998, 5, 9)
EXPECTED = {   # written out by hand
    "d month yyyy": "9 may 1998",
    "dd mon yyyy": "09 may 1998",
    "d Mon yy": "9 May 98",
    "weekday d month yyyy": "saturday 9 may 1998",
    "Weekday, d Month yyyy": "Saturday, 9 May 1998",
    "Month d, yyyy": "May 9, 1998",
    "Mon d, yyyy": "May 9, 1998",
    "month dth yyyy": "may 9th 1998",
    "the dth of month yyyy": "the 9th of may 1998",
    "dd/mm/yy": "09/05/98",
    "d/m/yyyy": "9/5/1998",
    "dd.mm.yyyy": "09.05.1998",
    "dd-mm-yyyy": "09-05-1998",
    "d mois yyyy": "9 mai 1998",
    "jour d mois yyyy": "samedi 9 mai 1998",
}


def test_every_format_by_hand():
    assert set(EXPECTED) == set(DATE_FORMATS)
    for fmt, text in EXPECTED.items():
        assert format_date(SATURDAY, fmt) == text, fmt
    new_year = datetime.date(2001, 1, 1)
    assert format_date(new_year, "jour d mois yyyy") == "lundi 1er janvier 2001"
    assert format_date(datetime.date(1963, 11, 22), "month dth yyyy") == "november 22nd 1963"
    assert format_date(datetime.date(2013, 12, 11), "the dth of month yyyy") == "the 11th of december 2013"
    assert format_date(datetime.date(1972, 8, 3), "d mois yyyy") == "3 août 1972"
    assert format_date(datetime.date(2023, 2, 21), "Mon d, yyyy") == "Feb 21, 2023"
    assert format_date(datetime.date(2005, 3, 13), "month dth yyyy") == "march 13th 2005"


def test_english_names_match_the_calendar():
    """strftime (C locale) is an independent source of English month and weekday names."""
    day = datetime.date(1950, 1, 1)
    for _ in range(400):
        assert format_date(day, "weekday d month yyyy") == \
            f"{day.strftime('%A').lower()} {day.day} {day.strftime('%B').lower()} {day.year}"
        assert format_date(day, "dd/mm/yy") == day.strftime("%d/%m/%y")
        assert format_date(day, "Month d, yyyy") == f"{day.strftime('%B')} {day.day}, {day.year}"
        day += datetime.timedelta(days=37)
    assert len(MONTHS_EN) == 12 and len(WEEKDAYS_EN) == 7


def test_pairs_are_reproducible_and_correct():
    pairs = date_pairs(3000, seed=5)
    assert pairs == date_pairs(3000, seed=5)
    assert pairs != date_pairs(3000, seed=6)
    assert date_pairs(10, seed=5) == date_pairs(10, seed=np.random.default_rng(5))
    counts = dict.fromkeys(DATE_FORMATS, 0)
    for source, target in pairs:
        date = datetime.date.fromisoformat(target)
        assert 1950 <= date.year <= 2049
        matching = [f for f in DATE_FORMATS if format_date(date, f) == source]
        assert matching, (source, target)
        for f in set(matching):
            counts[f] += 1
    n = len(pairs) / len(DATE_FORMATS)
    assert all(c > 0.7 * n for c in counts.values()), counts          # every format drawn, about uniformly
    years = [int(t[:4]) for _, t in pairs]
    assert min(years) < 1955 and max(years) > 2044                    # the whole span is drawn


def test_every_source_has_one_answer():
    """Two-digit years and day-first numbers: a source never names two dates."""
    answers: dict[str, str] = {}
    for source, target in date_pairs(20000, seed=1, formats=list(TWO_DIGIT_YEAR_FORMATS) + ["d/m/yyyy"]):
        assert answers.setdefault(source, target) == target, source


def test_formats_and_years_options():
    pairs = date_pairs(50, seed=0, formats=["d mois yyyy"], years=(1789, 1789))
    assert all(t.startswith("1789-") for _, t in pairs)
    assert all(s == format_date(datetime.date.fromisoformat(t), "d mois yyyy") for s, t in pairs)
    assert date_pairs(0) == []
    assert date_pairs(5, formats=["dd/mm/yy"], years=(1900, 1999))    # exactly a century: still unambiguous


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n=-1), ValueError, "non-negative"),
    (dict(n=2.5), ValueError, "non-negative"),
    (dict(n=3, formats=["yyyy/dd/mm"]), ValueError, "Unknown date format"),
    (dict(n=3, formats="d month yyyy"), TypeError, "list of format names"),
    (dict(n=3, formats=[]), TypeError, "list of format names"),
    (dict(n=3, years=(2000, 1990)), ValueError, "first <= last"),
    (dict(n=3, years=(0, 10)), ValueError, r"\[1, 9999\]"),
    (dict(n=3, years=1998), TypeError, "pair"),
    (dict(n=3, years=(1900, 2049)), ValueError, "more than 100 years"),
    (dict(n=3, seed="x"), TypeError, "seed"),
])
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        date_pairs(**kwargs)
    with pytest.raises(ValueError, match="Unknown date format"):
        format_date(SATURDAY, "iso")
    with pytest.raises(TypeError, match="datetime.date"):
        format_date("1998-05-09", "d month yyyy")
