"""Printed text -> room types, dimension strings -> metres, robust scale, gross area, the fusion rule."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.apps.floorplan.text import (
    FOOT,
    INCH,
    estimate_scale,
    fuse_type,
    match_word,
    parse_dimensions,
    parse_gross_area,
    room_scale,
    room_type_of,
    words_of,
)


def ft(feet: float, inches: float = 0) -> float:
    return round(feet * FOOT + inches * INCH, 3)


@pytest.mark.parametrize(
    "text, metres, unit",
    [
        ("4.96 x 3.47", (4.96, 3.47), "none"),
        ("4.96m x 3.47m", (4.96, 3.47), "m"),
        ("4.96 x 3.47m", (4.96, 3.47), "m"),  # the unit printed once
        ("4,96 × 3,47 m", (4.96, 3.47), "m"),  # decimal commas, the times sign
        ("(4.5m X 3.3m)", (4.5, 3.3), "m"),
        ("5.30 x3.89M", (5.30, 3.89), "m"),
        ("4960mm x 3470mm", (4.96, 3.47), "m"),
        ("16'3 x 11'5", (ft(16, 3), ft(11, 5)), "ft"),
        ("16'3\" x 11'5\"", (ft(16, 3), ft(11, 5)), "ft"),
        ("16’3” × 11’5”", (ft(16, 3), ft(11, 5)), "ft"),  # typographic quotes
        ("16' 3\" x 11' 5\"", (ft(16, 3), ft(11, 5)), "ft"),
        ("14' X 17'", (ft(14), ft(17)), "ft"),
        ("9.5' x 14.5'", (ft(9.5), ft(14.5)), "ft"),
        ("13' x 7'3", (ft(13), ft(7, 3)), "ft"),
        ("1O'6 x l2'", (ft(10, 6), ft(12)), "ft"),  # OCR read 0 as O and 1 as l
        ("3.4 7m x 2.6m", (3.47, 2.6), "m"),  # a space OCR put inside a number
    ],
)
def test_dimension_pairs(text, metres, unit):
    (d,) = [d for d in parse_dimensions(text) if len(d.metres) == 2]
    assert d.metres == pytest.approx(metres, abs=1e-3) and d.unit == unit


def test_lone_lengths_need_a_unit_and_noise_is_dropped():
    assert [d.metres for d in parse_dimensions("3.5m")] == [(3.5,)]
    assert [d.metres for d in parse_dimensions("12'6")] == [(ft(12, 6),)]
    assert parse_dimensions("Bedroom 2") == []  # a number without a unit is not a length
    assert [d.metres for d in parse_dimensions("3 x 2")] == [(3.0, 2.0)]  # no unit: metres ...
    assert parse_dimensions("148 x 1010") == []  # ... but 148 m is no room side: a misread
    assert parse_dimensions("16'14 x 11'5") == []  # 14 inches is no inch count
    assert parse_dimensions("") == []


def test_both_strings_of_a_room_are_read():
    got = [d.metres for d in parse_dimensions("14'8 x 10'10 (4.5m x 3.3m)")]
    assert got == [(ft(14, 8), ft(10, 10)), (4.5, 3.3)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("BEDROOM", "bedroom"),
        ("Bedroom 2", "bedroom"),
        ("Master Bedroom", "bedroom"),
        ("BED 3", "bedroom"),
        ("Bedr00m", "bedroom"),  # OCR digits for letters
        ("Bedroam", "bedroom"),  # one letter wrong
        ("Kitchen", "living_kitchen_dining"),
        ("Kichen/", "living_kitchen_dining"),
        ("RECEPTION/KITCHEN", "living_kitchen_dining"),
        ("Lounge", "living_kitchen_dining"),
        ("Dining Room", "living_kitchen_dining"),
        ("Living Room", "living_kitchen_dining"),
        ("Bathroom", "bathroom"),
        ("WC", "bathroom"),
        ("SHOWERROOM/", "bathroom"),  # words glued by OCR
        ("En-suite", "bathroom"),
        ("EN SUITE", "bathroom"),
        ("Entrance Hall", "hall"),
        ("Landing", "hall"),
        ("Corridor", "hall"),
        ("Walk-in Closet", "closet"),
        ("Wardrobe", "closet"),
        ("Storage", "closet"),
        ("Balcony", "balcony"),
        ("ROOF TERRACE", "balcony"),
        ("Washing Room", "bathroom"),  # R2V's label names map as the R3D conversion does
        ("Restroom", "bathroom"),
        ("living_kitchen_dining", "living_kitchen_dining"),  # the app's own label names
        ("Tenace", None),  # too far from "terrace" to be sure
        ("Second Floor", None),
        ("Approx. Gross Internal Area", None),
        ("IN", None),
    ],
)
def test_words_to_room_types(text, expected):
    assert room_type_of(text)[0] == expected


def test_short_words_are_never_fuzzy():
    assert match_word("bed")[0] == "bedroom" and match_word("red") == (None, 0.0, "")
    assert match_word("we") == (None, 0.0, "") and match_word("wc")[0] == "bathroom"
    assert words_of("Bedroom2 GARDEN") == ["bedroom", "garden"]  # 'den' is not cut out of 'garden'


def test_gross_area():
    assert parse_gross_area("113 m2 / 1216 sq ft") == {"m2": 113.0, "sq_ft": 1216.0, "text": "113 m2 / 1216 sq ft"}
    assert parse_gross_area("565SqFt-52.49SqM")["m2"] == 52.49
    assert parse_gross_area("Approx. gross internal area 436 Sq Ft. / 40.5 Sq M.")["m2"] == 40.5
    feet_only = parse_gross_area("FLOOR AREA 346 SQ FT")
    assert feet_only["sq_ft"] == 346.0 and feet_only["m2"] == pytest.approx(346 * FOOT**2, abs=0.01)
    assert parse_gross_area("Bedroom 4.5m x 3.3m") is None


def test_room_scale_pairs_long_with_long_and_refuses_odd_rooms():
    assert room_scale((100.0, 200.0), (4.0, 2.0)) == pytest.approx(50.0)
    assert room_scale((200.0, 100.0), (4.0, 4.0)) is None  # 2:1 in pixels, square on paper
    assert room_scale((200.0, 100.0), (4.0,)) is None


def test_scale_estimate_rejects_outliers():
    rng = np.random.default_rng(0)
    good = {i: float(v) for i, v in enumerate(50 * (1 + rng.normal(0, 0.02, 9)))}
    bad = {20: 80.0, 21: 75.0, 22: 31.0}  # misreads, a room merged with its neighbour
    est = estimate_scale({**good, **bad})
    assert est["rejected"] == [20, 21, 22] and est["rooms"] == 9 and est["candidates"] == 12
    assert est["px_per_m"] == pytest.approx(50, rel=0.02) and 0 < est["spread"] < 0.03
    plain_median = float(np.median(list({**good, **bad}.values())))
    assert abs(est["px_per_m"] - 50) < abs(plain_median - 50)  # the outliers pull a plain median away
    assert estimate_scale({}) is None
    assert estimate_scale({3: 42.0}) == {
        "px_per_m": 42.0,
        "rooms": 1,
        "candidates": 1,
        "spread": 0.0,
        "support": [3],
        "rejected": [],
    }


def test_fusion_rule():
    # no words: the network's type
    assert fuse_type({"bedroom": 0.6, "hall": 0.4}, {}) == ("bedroom", "network")
    # a confident word overrides even a unanimous vote
    assert fuse_type({"bedroom": 1.0}, {"living_kitchen_dining": 0.5}) == ("living_kitchen_dining", "text")
    # agreeing word
    assert fuse_type({"bedroom": 0.6, "hall": 0.4}, {"bedroom": 0.9}) == ("bedroom", "network+text")
    # a doubtful word only tips a close vote ...
    assert fuse_type({"bedroom": 0.55, "hall": 0.45}, {"hall": 0.1}) == ("hall", "text")
    # ... and not a clear one
    assert fuse_type({"bedroom": 0.9, "hall": 0.1}, {"hall": 0.1}) == ("bedroom", "network")
    # words of two types: the vote decides between them
    vote = {"bathroom": 0.3, "living_kitchen_dining": 0.7}
    words = {"bathroom": 0.9, "living_kitchen_dining": 0.9}
    assert fuse_type(vote, words) == ("living_kitchen_dining", "network+text")
