"""A synthetic translation task: dates as people write them, to ISO 8601.

``date_pairs(n, seed)`` draws ``n`` dates uniformly between two years and writes each in one of
``DATE_FORMATS``, drawn uniformly too; the target is the ISO date::

    ("saturday 9 may 1998", "1998-05-09")      ("May 9, 1998", "1998-05-09")
    ("09/05/98", "1998-05-09")                 ("samedi 9 mai 1998", "1998-05-09")

The task is small enough to train a character-level encoder-decoder on in minutes, yet has what
makes translation hard: reordering (the month before or after the day), words of two languages that
name the same number (``may``/``mai``/``05``), tokens to leave out (the weekday) and to infer (the
century of a two-digit year). Every source has exactly one right answer: numeric formats are all
day first (European order), and two-digit years are only drawn when the years span at most a
century, read as the one year of that span that ends in those digits.
"""

from __future__ import annotations

import datetime
from typing import Callable, Sequence

import numpy as np

MONTHS_EN = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
             "november", "december")
MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre")
WEEKDAYS_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def _ordinal_en(day: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th`` ... ``11th``, ``12th``, ``13th`` ... ``21st``."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _day_fr(day: int) -> str:
    return "1er" if day == 1 else str(day)           # French writes the first of the month as an ordinal


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


# name -> how it writes a date (the example in each comment is 1998-05-09, a Saturday)
_FORMATTERS: dict[str, Callable[[datetime.date], str]] = {
    "d month yyyy": lambda d: f"{d.day} {MONTHS_EN[d.month - 1]} {d.year}",                      # 9 may 1998
    "dd mon yyyy": lambda d: f"{d.day:02d} {MONTHS_EN[d.month - 1][:3]} {d.year}",               # 09 may 1998
    "d Mon yy": lambda d: f"{d.day} {_cap(MONTHS_EN[d.month - 1][:3])} {d.year % 100:02d}",      # 9 May 98
    "weekday d month yyyy": lambda d: (f"{WEEKDAYS_EN[d.weekday()]} {d.day} "                    # saturday 9 may 1998
                                       f"{MONTHS_EN[d.month - 1]} {d.year}"),
    "Weekday, d Month yyyy": lambda d: (f"{_cap(WEEKDAYS_EN[d.weekday()])}, {d.day} "            # Saturday, 9 May 1998
                                        f"{_cap(MONTHS_EN[d.month - 1])} {d.year}"),
    "Month d, yyyy": lambda d: f"{_cap(MONTHS_EN[d.month - 1])} {d.day}, {d.year}",              # May 9, 1998
    "Mon d, yyyy": lambda d: f"{_cap(MONTHS_EN[d.month - 1][:3])} {d.day}, {d.year}",            # May 9, 1998
    "month dth yyyy": lambda d: f"{MONTHS_EN[d.month - 1]} {_ordinal_en(d.day)} {d.year}",       # may 9th 1998
    "the dth of month yyyy": lambda d: (f"the {_ordinal_en(d.day)} of "                          # the 9th of may 1998
                                        f"{MONTHS_EN[d.month - 1]} {d.year}"),
    "dd/mm/yy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",                       # 09/05/98
    "d/m/yyyy": lambda d: f"{d.day}/{d.month}/{d.year}",                                         # 9/5/1998
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                               # 09.05.1998
    "dd-mm-yyyy": lambda d: f"{d.day:02d}-{d.month:02d}-{d.year}",                               # 09-05-1998
    "d mois yyyy": lambda d: f"{_day_fr(d.day)} {MONTHS_FR[d.month - 1]} {d.year}",              # 9 mai 1998
    "jour d mois yyyy": lambda d: (f"{WEEKDAYS_FR[d.weekday()]} {_day_fr(d.day)} "               # samedi 9 mai 1998
                                   f"{MONTHS_FR[d.month - 1]} {d.year}"),
}

#: the names of the formats ``date_pairs`` draws from (``formats=`` takes any of them)
DATE_FORMATS: tuple[str, ...] = tuple(_FORMATTERS)
#: the formats that write the year with two digits
TWO_DIGIT_YEAR_FORMATS: tuple[str, ...] = ("d Mon yy", "dd/mm/yy")


def format_date(date: datetime.date, fmt: str) -> str:
    """``date`` written in the format named ``fmt`` (one of ``DATE_FORMATS``)."""
    if not isinstance(date, datetime.date):
        raise TypeError(f"date must be a datetime.date, got {type(date).__name__}.")
    if fmt not in _FORMATTERS:
        raise ValueError(f"Unknown date format {fmt!r}; the formats are: {', '.join(DATE_FORMATS)}.")
    return _FORMATTERS[fmt](date)


def _check_years(years: Sequence[int]) -> tuple[int, int]:
    if isinstance(years, (str, bytes)) or not isinstance(years, Sequence) or len(years) != 2:
        raise TypeError(f"years must be a pair (first, last), got {years!r}.")
    first, last = years
    for y in (first, last):
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or not 1 <= y <= 9999:
            raise ValueError(f"years must be integers in [1, 9999], got {years!r}.")
    if first > last:
        raise ValueError(f"years must be (first, last) with first <= last, got {years!r}.")
    return int(first), int(last)


def date_pairs(n: int, seed: int | np.random.Generator | None = 0, formats: Sequence[str] | None = None,
               years: tuple[int, int] = (1950, 2049)) -> list[tuple[str, str]]:
    """``n`` pairs ``(date as written, ISO date)``, reproducible for a given ``seed``.

    Args:
        n: the number of pairs.
        seed: an int or a ``numpy.random.Generator`` (None: fresh randomness).
        formats: the names of the formats to draw from (default: every one of ``DATE_FORMATS``).
        years: the first and last year (inclusive) of the dates; formats with two-digit years need
            a span of at most 100 years so that the digits name one year.

    Returns:
        a list of ``n`` tuples ``(source, target)``, target ``"YYYY-MM-DD"``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}.")
    if seed is not None and not isinstance(seed, np.random.Generator) and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}.")
    if formats is None:
        formats = DATE_FORMATS
    if isinstance(formats, str) or not isinstance(formats, Sequence) or len(formats) == 0:
        raise TypeError(f"formats must be a non-empty list of format names, got {formats!r}.")
    unknown = [f for f in formats if f not in _FORMATTERS]
    if unknown:
        raise ValueError(f"Unknown date format(s) {unknown}; the formats are: {', '.join(DATE_FORMATS)}.")
    first, last = _check_years(years)
    two_digit = [f for f in formats if f in TWO_DIGIT_YEAR_FORMATS]
    if two_digit and last - first >= 100:
        raise ValueError(f"years {years!r} span more than 100 years, so the two-digit years of {two_digit} would "
                         "not say which year is meant; narrow the years or leave those formats out.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    start = datetime.date(first, 1, 1).toordinal()
    days = datetime.date(last, 12, 31).toordinal() - start + 1
    ordinals = rng.integers(0, days, size=int(n)) + start                # a uniform draw of days
    chosen = rng.integers(0, len(formats), size=int(n))
    pairs = []
    for ordinal, k in zip(ordinals, chosen):
        date = datetime.date.fromordinal(int(ordinal))
        pairs.append((_FORMATTERS[formats[int(k)]](date), date.isoformat()))
    return pairs


__all__ = ["DATE_FORMATS", "TWO_DIGIT_YEAR_FORMATS", "date_pairs", "format_date"]
