"""IFBench ``words:*`` checkers: letters, lengths, repeats and positions of words.

"Words" are whitespace chunks, usually after ASCII punctuation is removed, as in allenai/IFBench; the
two position checkers use Treebank-style tokens (`word_tokens`), as IFBench uses NLTK's tokenizer.
"""

from __future__ import annotations

import string
from collections import Counter

from ..ifeval.params import Checker, Param
from ..ifeval.text import Doc
from .lexicon import count_syllables
from .text import drop_punctuation, edge_tokens, rule_sentences, strip_punctuation, word_tokens
from .verbs import starts_with_verb

_ALPHABET = string.ascii_lowercase
_VOWELS = frozenset("aeiou")
_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")
_PRIMES = frozenset({2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97})


def _bare_words(text: str) -> list[str]:
    return drop_punctuation(text).split()


def alphabet(doc: Doc) -> bool:
    """words:alphabet: word k+1 starts with the letter after word k's (z wraps to a); the first starts with
    an ASCII letter."""
    words = _bare_words(doc.text)
    if not words:
        return False
    letter = words[0][0].lower()
    if letter not in _ALPHABET:
        return False
    for word in words[1:]:
        letter = _ALPHABET[(_ALPHABET.index(letter) + 1) % 26]
        if word.lower()[0] != letter:
            return False
    return True


def vowel(doc: Doc) -> bool:
    """words:vowel: one line (no newline inside the stripped text) using at most three of a, e, i, o, u."""
    text = doc.text.strip()
    if "\n" in text:
        return False
    return len(_VOWELS.intersection(text.lower())) <= 3


def consonants(doc: Doc) -> bool:
    """words:consonants: every whitespace chunk has two adjacent ASCII consonants (y included)."""
    for chunk in doc.lower.split():
        if not any(a in _CONSONANTS and b in _CONSONANTS for a, b in zip(chunk, chunk[1:])):
            return False
    return True


def palindrome(doc: Doc) -> bool:
    """words:palindrome: at least 10 words of 5+ characters that read the same backwards."""
    return sum(1 for w in _bare_words(doc.lower) if len(w) >= 5 and w == w[::-1]) >= 10


def prime_lengths(doc: Doc) -> bool:
    """words:prime_lengths: every word (punctuation removed) has a prime number of characters (at most 97)."""
    return all(len(word) in _PRIMES for word in _bare_words(doc.text))


def start_verb(doc: Doc) -> bool:
    """words:start_verb: the first token is a verb (see `starts_with_verb` for how this is decided offline)."""
    return starts_with_verb(edge_tokens(doc.text, 1)[0])


def repeats(doc: Doc, *, small_n: int) -> bool:
    """words:repeats: no lower-cased word (punctuation removed) occurs more than small_n times."""
    return all(count <= small_n for count in Counter(_bare_words(doc.lower)).values())


def odd_even_syllables(doc: Doc) -> bool:
    """words:odd_even_syllables: consecutive words alternate between odd and even syllable counts."""
    parities = [count_syllables(word) % 2 for word in _bare_words(doc.lower)]
    return all(a != b for a, b in zip(parities, parities[1:]))


def last_first(doc: Doc) -> bool:
    """words:last_first: each sentence's last word (case-insensitive) is the next sentence's first word."""
    sentences = rule_sentences(doc.text)
    for current, following in zip(sentences, sentences[1:]):
        last = current.rstrip(string.punctuation + " ").split()
        first = following.lstrip(string.punctuation + " ").split()
        if not last or not first or last[-1].lower() != first[0].lower():
            return False
    return True


def paragraph_last_first(doc: Doc) -> bool:
    """words:paragraph_last_first: every non-blank line starts and ends with the same lower-cased chunk
    (edge punctuation of the line removed; a line of punctuation only fails)."""
    for line in doc.lower.split("\n"):
        line = line.strip()
        if not line:
            continue
        words = strip_punctuation(line).split()
        if not words or words[0] != words[-1]:
            return False
    return True


def no_consecutive(doc: Doc) -> bool:
    """words:no_consecutive: no two adjacent words (punctuation removed) share their first character."""
    words = _bare_words(doc.lower)
    return all(a[0] != b[0] for a, b in zip(words, words[1:]))


def keywords_specific_position(doc: Doc, *, keyword: str, n: int, m: int) -> bool:
    """words:keywords_specific_position: the m-th token of the n-th sentence is the keyword (exact case)."""
    sentences = rule_sentences(doc.text)
    if len(sentences) < n:
        return False
    tokens = word_tokens(sentences[n - 1])
    return len(tokens) >= m and tokens[m - 1] == keyword


def words_position(doc: Doc, *, keyword: str) -> bool:
    """words:words_position: the second and the second-to-last tokens are the keyword (exact case)."""
    head, tail = edge_tokens(doc.text, 2)
    return len(head) >= 2 and head[1] == tail[-2] == keyword


CHECKERS: dict[str, Checker] = {
    "words:alphabet": Checker(alphabet),
    "words:vowel": Checker(vowel),
    "words:consonants": Checker(consonants),
    "words:palindrome": Checker(palindrome),
    "words:prime_lengths": Checker(prime_lengths),
    "words:start_verb": Checker(start_verb),
    "words:repeats": Checker(repeats, (Param("small_n", "count"),)),
    "words:odd_even_syllables": Checker(odd_even_syllables),
    "words:last_first": Checker(last_first),
    "words:paragraph_last_first": Checker(paragraph_last_first),
    "words:no_consecutive": Checker(no_consecutive),
    "words:keywords_specific_position": Checker(
        keywords_specific_position, (Param("keyword", "text"), Param("n", "positive"), Param("m", "positive"))
    ),
    "words:words_position": Checker(words_position, (Param("keyword", "text"),)),
}
