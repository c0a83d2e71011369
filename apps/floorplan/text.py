"""Words printed on a plan -> room types, room sizes in metres, the plan's scale and gross area.

Pure text and geometry here (no OCR engine): :func:`room_type_of` maps a room name to an R3D type,
:func:`parse_dimensions` reads dimension strings, :func:`estimate_scale` turns rooms with printed
sizes into pixels per metre (median, outliers rejected by MAD), :func:`parse_gross_area` reads
"113 m2 / 1216 sq ft", :func:`fuse_type` combines the network's per-room vote with the words.

>>> room_type_of("BEDR00M 2")[0], room_type_of("Shower Room/En-suite")[0]
('bedroom', 'bathroom')
>>> [d.metres for d in parse_dimensions("16'3 x 11'5 (4.95m x 3.48m)")]
[(4.953, 3.48), (4.95, 3.48)]
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np

FOOT, INCH = 0.3048, 0.0254

#: printed words -> R3D room type (``model.ROOM_CLASSES``); R2V's labels map the same way
#: (living room / kitchen / dining -> living_kitchen_dining; bathroom / restroom / washing room ->
#: bathroom; corridor -> hall; closet; balcony; bedroom)
KEYWORDS: dict[str, str] = {
    **dict.fromkeys("bedroom bedrooms bed beds bedrm bdrm master guest nursery study office den".split(), "bedroom"),
    **dict.fromkeys(
        "kitchen kitchenette kit living lounge dining diner reception family sitting drawing breakfast "
        "games game playroom conservatory livingroom".split(),
        "living_kitchen_dining",
    ),
    **dict.fromkeys(
        "bathroom bath baths wc toilet shower ensuite lavatory washroom washing restroom cloakroom powder utility "
        "laundry".split(),
        "bathroom",
    ),
    **dict.fromkeys(
        "hall hallway entry entrance landing corridor foyer lobby vestibule passage stairs stair stairwell".split(),
        "hall",
    ),
    **dict.fromkeys(
        "closet wardrobe wardrobes storage store stores cupboard pantry linen dressing wic vault".split(), "closet"
    ),
    **dict.fromkeys("balcony terrace deck patio veranda verandah loggia garden yard".split(), "balcony"),
}
#: two-word spellings that OCR or the plan splits ("en suite", "walk in", "living room")
PHRASES = {"en suite": "ensuite", "walk in": "closet", "living room": "livingroom", "w c": "wc", "w i c": "wic"}
#: short keywords are matched exactly only (fuzzy "bed" would also match "red", "wc" anything)
MIN_FUZZY_LEN = 5
FUZZY_CUTOFF = 0.8
_DIGIT_AS_LETTER = str.maketrans({"0": "o", "1": "l", "5": "s", "8": "b", "|": "l"})


def words_of(text: str) -> list[str]:
    """Lower-case words of ``text``; digits inside letter runs are read as the letters OCR mistook
    (``BEDR00M`` -> ``bedroom``); phrases are joined (``en suite`` -> ``ensuite``).

    >>> words_of("EN SUITE/Bedr00m 2"), words_of("SHOWERROOM/Bedroom2")
    (['ensuite', 'bedroom'], ['shower', 'room', 'bedroom'])
    """
    out = []
    for tok in re.findall(r"[A-Za-z0-9|]+", text):
        tok = re.sub(r"(?<=[A-Za-z]{3})\d+$", "", tok)  # "Bedroom2": the number is not part of the word
        if re.search(r"[A-Za-z]", tok) and sum(c.isalpha() for c in tok) >= 2:
            out.extend(_split_glued(tok.translate(_DIGIT_AS_LETTER).lower()))
    joined = " ".join(out)
    for a, b in PHRASES.items():
        joined = re.sub(rf"\b{a}\b", b, joined)
    return joined.split()


#: keywords long enough to be found inside words OCR glued together ("SHOWERROOM", "Bedroom2")
_GLUE_MIN = 4
_GLUE_KEYS = sorted((k for k in KEYWORDS if len(k) >= _GLUE_MIN), key=len, reverse=True)


def _split_glued(word: str) -> list[str]:
    """``showerroom`` -> ``["shower", "room"]``: a long word that is no keyword itself is cut around
    the longest keywords inside it (the rest stays as words of their own)."""
    if word in KEYWORDS or len(word) < 7 or match_word(word)[0] is not None:
        return [word]
    for k in _GLUE_KEYS:
        i = word.find(k)
        if i >= 0:
            left, right = word[:i], word[i + len(k) :]
            return [
                *(_split_glued(left) if len(left) >= 2 else []),
                k,
                *(_split_glued(right) if len(right) >= 2 else []),
            ]
    return [word]


def match_word(word: str) -> tuple[str | None, float, str]:
    """``(type or None, similarity 0-1, keyword)`` for one word (exact, else fuzzy for long words).

    >>> match_word("kitchem"), match_word("bed"), match_word("red")
    (('living_kitchen_dining', 0.857, 'kitchen'), ('bedroom', 1.0, 'bed'), (None, 0.0, ''))
    """
    if word in KEYWORDS:
        return KEYWORDS[word], 1.0, word
    if len(word) < MIN_FUZZY_LEN:
        return None, 0.0, ""
    best = difflib.get_close_matches(word, [k for k in KEYWORDS if len(k) >= MIN_FUZZY_LEN], 1, FUZZY_CUTOFF)
    if not best:
        return None, 0.0, ""
    sim = difflib.SequenceMatcher(None, word, best[0]).ratio()
    return KEYWORDS[best[0]], round(sim, 3), best[0]


def room_type_of(text: str) -> tuple[str | None, float]:
    """The room type a printed name says, with its match similarity; ``(None, 0.0)`` for no room word.
    Several words of one type agree; words of different types: the first room word wins.

    >>> room_type_of("RECEPTION/KITCHEN"), room_type_of("Second Floor")
    (('living_kitchen_dining', 1.0), (None, 0.0))
    """
    for w in words_of(text):
        typ, sim, _ = match_word(w)
        if typ is not None:
            return typ, sim
    return None, 0.0


# ---------------------------------------------------------------- dimension strings
_QUOTE1 = "'’‘´`′ʼ"
_QUOTE2 = '"”“″'
_TIMES = "xX×хХ*"


def normalise(text: str) -> str:
    """OCR and typography variants -> one spelling: quotes, times signs, decimal commas, O/l as digits.

    >>> normalise("16’3” × 11‘5"), normalise("4,96 X 3.4 7m"), normalise("1O'6 x l2'")
    ('16\\'3" x 11\\'5', '4.96 x 3.47m', "10'6 x 12'")
    """
    t = text
    for q in _QUOTE1:
        t = t.replace(q, "'")
    for q in _QUOTE2:
        t = t.replace(q, '"')
    t = t.replace("''", '"')
    t = re.sub(rf"(?<=[\d'\"m.])\s*[{_TIMES}]\s*(?=[\d(])", " x ", t)
    t = re.sub(r"(?<=\d),(?=\d{1,2}(?!\d))", ".", t)  # 4,96 -> 4.96; 1,115 (thousands) stays
    t = re.sub(r"(?<=\d\.\d) (?=\d\s*m?\b)", "", t)  # "3.4 7m" (a space OCR put in a number)
    for _ in range(2):
        t = re.sub(r"(?<=\d)[Oo](?=[\d'.\s]|$)|(?<=[\s(x])[Oo](?=\d)", "0", t)
        t = re.sub(r"(?<=\d)[lI|](?=[\d'.])|(?<=[\s(x])[lI|](?=\d)|^[lI|](?=\d)", "1", t)
    return re.sub(r"\s+", " ", t).strip()


_LEN = (
    r"(?:(?P<{p}ft>\d{{1,3}}(?:\.\d+)?)\s*(?:'|ft\.?|feet)\s*-?\s*"
    r"(?:(?P<{p}in>\d{{1,2}}(?:\.\d+)?)\s*(?:\"|in\b\.?|inch(?:es)?)?)?"
    r"|(?P<{p}num>\d{{1,5}}(?:\.\d{{1,3}})?)\s*(?P<{p}unit>mm|cm|m(?![a-z²2]))?)"
)
_PAIR = re.compile(_LEN.format(p="a") + r"\s*(?:max\.?\s*)?x\s*" + _LEN.format(p="b"), re.IGNORECASE)
_SINGLE = re.compile(
    r"(?<![\d.'x])(?P<sft>\d{1,3})\s*'\s*(?P<sin>\d{1,2}(?!\d))?\s*\"?(?!\s*x)|"
    r"(?<![\d.x])(?P<snum>\d{1,3}(?:\.\d{1,2})?)\s*(?P<sunit>m)(?![a-z²2])",
    re.IGNORECASE,
)
_XPR = re.compile(r"[\d'\".]+\s*(?:mm|cm|m)?\s*(?:max\.?\s*)?x\s*[\d'\".]+\s*(?:mm|cm|m)?", re.IGNORECASE)
#: a room side outside this range (metres) is a misread, not a room
SIDE_RANGE = (0.5, 30.0)


@dataclass(frozen=True)
class Dimension:
    """A parsed dimension string: both sides in metres (one side for a lone length), the unit printed."""

    text: str
    metres: tuple[float, ...]
    unit: str  # "m" | "ft" | "none" (no unit printed: read as metres unless the plan prints feet)

    def to_json(self) -> dict:
        return {"text": self.text, "m": list(self.metres), "unit": self.unit}


def _length(m: re.Match, p: str) -> tuple[float, str] | None:
    g = m.groupdict()
    if g.get(f"{p}ft") is not None:
        ft = float(g[f"{p}ft"])
        inch = float(g[f"{p}in"]) if g.get(f"{p}in") else 0.0
        if inch >= 12:
            return None
        return ft * FOOT + inch * INCH, "ft"
    if g.get(f"{p}num") is None:
        return None
    v, unit = float(g[f"{p}num"]), (g.get(f"{p}unit") or "").lower()
    if unit == "mm":
        return v / 1000, "m"
    if unit == "cm":
        return v / 100, "m"
    return v, "m" if unit == "m" else "none"


def parse_dimensions(text: str, singles: bool = True) -> list[Dimension]:
    """Every dimension string in ``text``: pairs ("4.96 x 3.47", "4.96m x 3.47m", "16'3 x 11'5",
    "16'3\\" x 11'5\\"", "4960mm x 3470mm", "14' X 17'") and, with ``singles``, lone lengths with a
    unit ("3.5m", "12'6"). A side without a unit takes the other side's; sides outside
    :data:`SIDE_RANGE` metres are dropped as misreads.

    >>> [d.metres for d in parse_dimensions("Bedroom 2 4.96 x 3.47 / 3.5m")]
    [(4.96, 3.47), (3.5,)]
    """
    t = normalise(text)
    out: list[Dimension] = []
    for m in _PAIR.finditer(t):
        a, b = _length(m, "a"), _length(m, "b")
        if a is None or b is None:
            continue
        (va, ua), (vb, ub) = a, b
        if ua == "none" and ub != "none":  # "4.96 x 3.47m": the unit printed once
            ua = ub
        if ub == "none" and ua != "none":
            ub = ua
        if {ua, ub} == {"ft", "m"}:
            continue
        if ua == "ft" and _length(m, "b")[1] == "none":  # 14' x 17 (the second foot mark lost)
            vb *= FOOT
        if all(SIDE_RANGE[0] <= v <= SIDE_RANGE[1] for v in (va, vb)):
            out.append(Dimension(m.group(0).strip(), (round(va, 3), round(vb, 3)), ua))
    if singles:
        rest = _XPR.sub(" ", t)  # the sides of a pair (read or refused) are not lone lengths
        for m in _SINGLE.finditer(rest):
            if m.group("sft") is not None:
                inch = float(m.group("sin") or 0)
                v, unit = float(m.group("sft")) * FOOT + inch * INCH, "ft"
                if inch >= 12:
                    continue
            else:
                v, unit = float(m.group("snum")), "m"
            if SIDE_RANGE[0] <= v <= SIDE_RANGE[1]:
                out.append(Dimension(m.group(0).strip(), (round(v, 3),), unit))
    return out


_AREA_M = re.compile(
    r"(\d[\d,]*(?:\.\d+)?)\s*(?:sq\.?\s*m(?:etres?|eters?)?\b\.?|sqm\b|m2\b|m²|square\s+met(?:re|er)s?)",
    re.IGNORECASE,
)
_AREA_FT = re.compile(
    r"(\d[\d,]*(?:\.\d+)?)\s*(?:sq\.?\s*f(?:ee)?t\b\.?|sqft\b|ft2\b|ft²|square\s+f(?:ee|oo)t)", re.IGNORECASE
)


def parse_gross_area(text: str) -> dict | None:
    """The gross area a plan prints ("113 m2 / 1216 sq ft", "565 Sq Ft - 52.49 Sq M"), in m^2 (from
    the metric figure when printed, else converted from square feet); None when there is none.

    >>> parse_gross_area("Approx. Gross Internal Area 1,115 sq ft / 103.6 sq m")
    {'m2': 103.6, 'sq_ft': 1115.0, 'text': '1,115 sq ft / 103.6 sq m'}
    """
    t = normalise(text)
    m2 = _AREA_M.search(t)
    ft = _AREA_FT.search(t)
    if not m2 and not ft:
        return None
    sq_m = float(m2.group(1).replace(",", "")) if m2 else None
    sq_ft = float(ft.group(1).replace(",", "")) if ft else None
    spans = [x.span() for x in (m2, ft) if x]
    doc = {
        "m2": sq_m if sq_m is not None else round(sq_ft * FOOT**2, 2),
        "sq_ft": sq_ft,
        "text": t[min(s for s, _ in spans) : max(e for _, e in spans)],
    }
    return doc if doc["m2"] > 0 else None


# ---------------------------------------------------------------- scale
#: a room's two axis estimates must agree within this ratio (else the room is not the rectangle printed)
AXIS_AGREEMENT = 1.25
#: inliers lie within this many robust standard deviations (1.4826 MAD) of the median
MAD_K = 3.0
#: the MAD never counts as smaller than this share of the median (exact data would reject everything)
MIN_REL_SPREAD = 0.03


def room_scale(size_px: tuple[float, float], dims_m: tuple[float, ...]) -> float | None:
    """Pixels per metre one room gives: its pixel extents against its printed sides (long to long,
    short to short; the geometric mean of the two axes), None when the axes disagree by more than
    :data:`AXIS_AGREEMENT` (an L-shaped room, two rooms merged, a misread).

    >>> room_scale((200, 100), (2.0, 4.0)), room_scale((200, 100), (4.0, 4.0))
    (50.0, None)
    """
    if len(dims_m) != 2 or min(size_px) <= 0 or min(dims_m) <= 0:
        return None
    (pl, ps), (ml, ms) = sorted(size_px, reverse=True), sorted(dims_m, reverse=True)
    a, b = pl / ml, ps / ms
    if max(a, b) / min(a, b) > AXIS_AGREEMENT:
        return None
    return float(np.sqrt(a * b))


def estimate_scale(samples: dict[int, float]) -> dict | None:
    """Robust pixels per metre over rooms: ``{room id: px/m}`` -> median of the inliers (within
    :data:`MAD_K` robust deviations of the median), with the rooms that supported it, the ones
    rejected and the spread (inliers' MAD relative to the estimate). None without samples.

    >>> e = estimate_scale({0: 50.0, 1: 51.0, 2: 49.5, 3: 80.0})
    >>> e["px_per_m"], e["rooms"], e["rejected"]
    (50.0, 3, [3])
    """
    if not samples:
        return None
    ids = list(samples)
    v = np.array([samples[i] for i in ids], np.float64)
    med = float(np.median(v))
    mad = max(float(np.median(np.abs(v - med))), MIN_REL_SPREAD * med / 1.4826)
    keep = np.abs(v - med) <= MAD_K * 1.4826 * mad
    inl = v[keep]
    est = float(np.median(inl))
    spread = float(np.median(np.abs(inl - est)) / est) if len(inl) else 0.0
    return {
        "px_per_m": round(est, 3),
        "rooms": int(keep.sum()),
        "candidates": len(ids),
        "spread": round(spread, 4),
        "support": [ids[i] for i in np.nonzero(keep)[0]],
        "rejected": [ids[i] for i in np.nonzero(~keep)[0]],
    }


# ---------------------------------------------------------------- fusion
#: weight of a word against the network's vote share (see :func:`fuse_type`)
TEXT_WEIGHT = 2.0


def fuse_type(net_share: dict[str, float], text_scores: dict[str, float]) -> tuple[str, str]:
    """The final type of a room and its source. Each type scores ``net_share[t] + TEXT_WEIGHT *
    text_scores[t]``, where ``net_share`` is the share of the room's pixels the network gave ``t``
    (summing to 1) and ``text_scores[t]`` the best OCR score x match similarity of a word of type
    ``t`` inside the room. A word read with confidence >= 0.5 scores >= 1 and so overrides any vote;
    a doubtful word only tips a close vote; words of several types are separated by the vote.
    Source: ``"network"`` (no room word, or the vote outweighed a doubtful one), ``"text"`` (the words
    changed the type) or ``"network+text"`` (a word agreed with the vote).

    >>> fuse_type({"bedroom": 0.7, "hall": 0.3}, {"hall": 0.9}), fuse_type({"bedroom": 1.0}, {})
    (('hall', 'text'), ('bedroom', 'network'))
    """
    net = max(net_share, key=net_share.get) if net_share else None
    if not text_scores:
        return net or "background", "network"
    types = set(net_share) | set(text_scores)
    score = {t: net_share.get(t, 0.0) + TEXT_WEIGHT * text_scores.get(t, 0.0) for t in types}
    final = max(sorted(score), key=lambda t: (score[t], t in text_scores))  # a tie goes to the word
    if final != net:
        return final, "text"
    return final, "network+text" if final in text_scores else "network"
