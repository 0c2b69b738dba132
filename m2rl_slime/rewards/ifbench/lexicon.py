"""Small word resources the IFBench checkers need, written for this package (no NLTK data, no downloads).

- `STOPWORDS`: English function words, with the same membership as NLTK's English stopword list for
  every token a ``\\w+`` tokenizer can produce (entries with an apostrophe can never match such a token
  and are left out; clitic remnants such as ``don``, ``t``, ``ll`` are in, as in NLTK's list).
- `count_syllables`: vowel-group counting with syllapy's adjustments (a final ``e`` is silent,
  consonant + ``le`` is a syllable), the rule syllapy (IFBench's counter) applies to words outside its
  6.4k-word table; words with a digit count 0 and hyphenated words add their parts, as in syllapy.
  No ``-ed``/``-es`` rule: measured, it agrees less often with syllapy (docs/rewards_if.md).
- `is_emoji`: whether one code point is an emoji on its own (the Unicode 17 Emoji property, skin-tone
  modifiers included, without the keycap bases ``#*0-9`` and the lone regional-indicator letters), as
  the ``emoji`` package that IFBench calls answers for a single character.
- `looks_like_verb`: a verb lexicon standing in for NLTK's perceptron POS tagger on a response's first
  token (``words:start_verb``).

Everything is built lazily on first use (no import-time work).
"""

from __future__ import annotations

from functools import lru_cache

_STOPWORD_TEXT = """
a about above after again against ain all am an and any are aren as at be because been before being below
between both but by can couldn d did didn do does doesn doing don down during each few for from further
had hadn has hasn have haven having he her here hers herself him himself his how i if in into is isn it
its itself just ll m ma me mightn more most mustn my myself needn no nor not now o of off on once only or
other our ours ourselves out over own re s same shan she should shouldn so some such t than that the their
theirs them themselves then there these they this those through to too under until up ve very was wasn we
were weren what when where which while who whom why will with won wouldn y you your yours yourself
yourselves
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

_VOWELS = frozenset("aeiouy")
_EDGE_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _vowel_groups(word: str) -> int:
    """Vowel groups (y is a vowel), less a final "e", plus a consonant + "le" ending; at least 1."""
    count = 1 if word[0] in _VOWELS else 0
    count += sum(1 for prev, ch in zip(word, word[1:]) if ch in _VOWELS and prev not in _VOWELS)
    if word.endswith("e"):
        count -= 1
    if word.endswith("le") and len(word) > 2 and word[-3] not in _VOWELS:
        count += 1
    return count or 1


def count_syllables(word: str) -> int:
    """Syllables of one word (lower-cased, edge punctuation removed); 0 for an empty word or one with a
    digit; a hyphenated word adds its parts (0 if a part has none)."""
    word = word.strip().lower().strip(_EDGE_PUNCTUATION)
    if not word or any(ch.isdigit() for ch in word):
        return 0
    head, hyphen, tail = word.partition("-")
    if hyphen and head and tail:
        first, rest = count_syllables(head), count_syllables(tail)
        return 0 if first == 0 or rest == 0 else first + rest
    return _vowel_groups(word)


# Single code points with the Unicode Emoji property (inclusive ranges), keycap bases excluded.
_EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB),
    (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2604), (0x260E, 0x260E),
    (0x2611, 0x2611), (0x2614, 0x2615), (0x2618, 0x2618), (0x261D, 0x261D), (0x2620, 0x2620),
    (0x2622, 0x2623), (0x2626, 0x2626), (0x262A, 0x262A), (0x262E, 0x262F), (0x2638, 0x263A),
    (0x2640, 0x2640), (0x2642, 0x2642), (0x2648, 0x2653), (0x265F, 0x2660), (0x2663, 0x2663),
    (0x2665, 0x2666), (0x2668, 0x2668), (0x267B, 0x267B), (0x267E, 0x267F), (0x2692, 0x2697),
    (0x2699, 0x2699), (0x269B, 0x269C), (0x26A0, 0x26A1), (0x26A7, 0x26A7), (0x26AA, 0x26AB),
    (0x26B0, 0x26B1), (0x26BD, 0x26BE), (0x26C4, 0x26C5), (0x26C8, 0x26C8), (0x26CE, 0x26CF),
    (0x26D1, 0x26D1), (0x26D3, 0x26D4), (0x26E9, 0x26EA), (0x26F0, 0x26F5), (0x26F7, 0x26FA),
    (0x26FD, 0x26FD), (0x2702, 0x2702), (0x2705, 0x2705), (0x2708, 0x270D), (0x270F, 0x270F),
    (0x2712, 0x2712), (0x2714, 0x2714), (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721),
    (0x2728, 0x2728), (0x2733, 0x2734), (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C),
    (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757), (0x2763, 0x2764), (0x2795, 0x2797),
    (0x27A1, 0x27A1), (0x27B0, 0x27B0), (0x27BF, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D),
    (0x3297, 0x3297), (0x3299, 0x3299), (0x1F004, 0x1F004), (0x1F0CF, 0x1F0CF), (0x1F170, 0x1F171),
    (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F201, 0x1F202),
    (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A), (0x1F250, 0x1F251), (0x1F300, 0x1F321),
    (0x1F324, 0x1F393), (0x1F396, 0x1F397), (0x1F399, 0x1F39B), (0x1F39E, 0x1F3F0), (0x1F3F3, 0x1F3F5),
    (0x1F3F7, 0x1F3FF), (0x1F400, 0x1F4FD), (0x1F4FF, 0x1F53D), (0x1F549, 0x1F54E), (0x1F550, 0x1F567),
    (0x1F56F, 0x1F570), (0x1F573, 0x1F57A), (0x1F587, 0x1F587), (0x1F58A, 0x1F58D), (0x1F590, 0x1F590),
    (0x1F595, 0x1F596), (0x1F5A4, 0x1F5A5), (0x1F5A8, 0x1F5A8), (0x1F5B1, 0x1F5B2), (0x1F5BC, 0x1F5BC),
    (0x1F5C2, 0x1F5C4), (0x1F5D1, 0x1F5D3), (0x1F5DC, 0x1F5DE), (0x1F5E1, 0x1F5E1), (0x1F5E3, 0x1F5E3),
    (0x1F5E8, 0x1F5E8), (0x1F5EF, 0x1F5EF), (0x1F5F3, 0x1F5F3), (0x1F5FA, 0x1F64F), (0x1F680, 0x1F6C5),
    (0x1F6CB, 0x1F6D2), (0x1F6D5, 0x1F6D9), (0x1F6DC, 0x1F6E5), (0x1F6E9, 0x1F6E9), (0x1F6EB, 0x1F6EC),
    (0x1F6F0, 0x1F6F0), (0x1F6F3, 0x1F6FC), (0x1F7E0, 0x1F7EB), (0x1F7F0, 0x1F7F0), (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945), (0x1F947, 0x1F9FF), (0x1FA70, 0x1FA7C), (0x1FA80, 0x1FAC6), (0x1FAC8, 0x1FAC8),
    (0x1FACC, 0x1FADD), (0x1FADF, 0x1FAEB), (0x1FAEF, 0x1FAFA),
)  # fmt: skip


@lru_cache(maxsize=1)
def _emoji_code_points() -> frozenset[int]:
    return frozenset(cp for low, high in _EMOJI_RANGES for cp in range(low, high + 1))


def is_emoji(char: str) -> bool:
    """True when `char` (one code point) is an emoji by itself."""
    return len(char) == 1 and ord(char) in _emoji_code_points()
