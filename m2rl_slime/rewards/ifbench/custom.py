"""IFBench ``custom:*`` checkers: one fixed task each (a list, a CSV table, a story), with its answer key.

Behaviour follows allenai/IFBench's checkers; the regexes that could backtrack on hostile output
(the question splitter, the quoted-special-character field test) are replaced by linear scans with
the same verdicts.
"""

from __future__ import annotations

import csv
import io
import re
import string
import unicodedata

from ..ifeval.params import Checker
from ..ifeval.text import Doc
from .text import drop_punctuation, rule_sentences

_MULTIPLES_OF_7 = [str(n) for n in range(14, 51, 7)]
# European capitals north of 45 degrees, from north to south (the task's answer key).
EUROPEAN_CAPITALS_BY_LATITUDE = (
    "Reykjavik", "Helsinki", "Oslo", "Tallinn", "Stockholm", "Riga", "Moscow", "Copenhagen", "Vilnius", "Minsk",
    "Dublin", "Berlin", "Amsterdam", "Warsaw", "London", "Brussels", "Prague", "Luxembourg", "Paris", "Vienna",
    "Bratislava", "Budapest", "Vaduz", "Chisinau", "Bern", "Ljubljana", "Zagreb",
)  # fmt: skip
_CITY_HEADER = ["ID", "Country", "City", "Year", "Count"]
_PRODUCT_HEADER_RE = re.compile(
    r'(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),[ \t]*(Price|"Price"),'
    r'[ \t]*(Stock|"Stock")\Z'
)
_STUDENT_HEADER_RE = re.compile(
    r'(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")\t *(Semester|"Semester")\t *(Score|"Score")\Z'
)
_DIGITS_RE = re.compile(r"\d+")
_QUESTION_RE = re.compile(r"Question \d+[.|):;]?\s*")
_OPTION_LINE_RE = re.compile(r"[A-Ea-e][.|)]\s*\w")
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
_STRIP = string.punctuation + " "


def _ascii_fold(text: str) -> str:
    """Accents removed and anything outside ASCII dropped ("São Tomé" -> "Sao Tome")."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def multiples(doc: Doc) -> bool:
    """custom:multiples: the numbers in the response are exactly 14, 21, 28, 35, 42, 49, in order."""
    return _DIGITS_RE.findall(doc.text.replace(",", ", ")) == _MULTIPLES_OF_7


def _split_questions(text: str) -> list[str]:
    """The text cut at each "Question N" label (with the newlines before it and the space after it),
    as IFBench's ``re.split`` cuts it, without rescanning newline runs."""
    parts, position = [], 0
    for match in _QUESTION_RE.finditer(text):
        start = match.start()
        while start > position and text[start - 1] == "\n":
            start -= 1
        parts.append(text[position:start])
        position = match.end()
    parts.append(text[position:])
    return parts


def mcq_count_length(doc: Doc) -> bool:
    """custom:mcq_count_length: starts with "Question"; four questions, each with five option lines
    ("A." ... "E." or "a)"), and each question's text longer than the one before."""
    text = doc.text
    if text[text.find("Question") :] != text:
        return False
    questions = _split_questions(text)
    if questions[0] == "":
        questions = questions[1:]
    questions = [q.strip() for q in questions if q.strip()]
    if len(questions) != 4:
        return False
    lengths = []
    for question in questions:
        stem, option_count, in_options = "", 0, False
        for line in question.split("\n"):
            line = line.strip()
            if _OPTION_LINE_RE.match(line):
                option_count += 1
                in_options = True
            elif not in_options:
                stem += " " + line
        if option_count != 5:
            return False
        lengths.append(len(stem.strip()))
    return all(a < b for a, b in zip(lengths, lengths[1:]))


def reverse_newline(doc: Doc) -> bool:
    """custom:reverse_newline: from the first line naming Zimbabwe on, at least 52 non-empty lines in
    reverse alphabetical order (accents folded; edge punctuation removed)."""
    lines = [s for s in (line.strip(_STRIP) for line in doc.text.split("\n")) if s]
    start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
    if start is None or len(lines) - start < 52:
        return False
    folded = [_ascii_fold(line) for line in lines[start:]]
    return all(a >= b for a, b in zip(folded, folded[1:]))


def word_reverse(doc: Doc) -> bool:
    """custom:word_reverse: read backwards word by word (punctuation removed), the answer says "bald eagle"."""
    words = drop_punctuation(doc.lower.strip()).split()
    reversed_text = " ".join(reversed(words))
    return "bald eagle" in reversed_text and reversed_text in rule_sentences(reversed_text)


def character_reverse(doc: Doc) -> bool:
    """custom:character_reverse: "bald eagle" written backwards ("elgae dlab") occurs, any case."""
    return "elgae dlab" in doc.lower


def sentence_alphabet(doc: Doc) -> bool:
    """custom:sentence_alphabet: 26 sentences whose first words start with a, b, ..., z in order."""
    sentences = rule_sentences(doc.text)
    if len(sentences) != 26:
        return False
    for letter, sentence in zip(string.ascii_lowercase, sentences):
        words = sentence.split()
        if not words or words[0].lower()[0] != letter:
            return False
    return True


def european_capitals_sort(doc: Doc) -> bool:
    """custom:european_capitals_sort: exactly the 27 capitals, comma-separated, north to south."""
    names = [name.strip() for name in _ascii_fold(doc.text).split(",") if name.strip()]
    return names == list(EUROPEAN_CAPITALS_BY_LATITUDE)


def _csv_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def csv_city(doc: Doc) -> bool:
    """custom:csv_city: a CSV table: the header ID,Country,City,Year,Count and 7 rows of 5 fields."""
    rows = _csv_rows(doc.text)
    return len(rows) == 8 and rows[0] == _CITY_HEADER and all(len(row) == 5 for row in rows[1:])


def _quoted_special(field: str) -> bool:
    """IFBench's ``re.match(r'".*[^\\d\\w\\s].*"', field)`` in one pass: the field opens with ``"`` and,
    before its first newline, a non-word, non-space character precedes a later ``"``."""
    if not field.startswith('"'):
        return False
    line = field[1:].split("\n", 1)[0]
    last_quote = line.rfind('"')
    return last_quote > 0 and any(not (ch.isalnum() or ch == "_" or ch.isspace()) for ch in line[:last_quote])


def csv_special_character(doc: Doc) -> bool:
    """custom:csv_special_character: header ProductID,Category,Brand,Price,Stock (quotes optional), 14
    rows of 5 fields, and a field (in a row read before any malformed one) that is quoted and holds a
    special character."""
    if not _PRODUCT_HEADER_RE.match(doc.text.split("\n")[0].strip()):
        return False
    rows = _csv_rows(doc.text.replace('"', '"""'))
    if len(rows) != 15:
        return False
    for row in rows[1:]:
        if len(row) != 5:
            return False
        if any(_quoted_special(field) for field in row):
            return True
    return False


def csv_quotes(doc: Doc) -> bool:
    """custom:csv_quotes: a tab-separated table with header StudentID, Subject, Grade, Semester, Score,
    3 rows of 5 fields, every field wrapped in double quotes."""
    if not _STUDENT_HEADER_RE.match(doc.text.split("\n")[0].strip()):
        return False
    rows = _csv_rows(doc.text.replace('"', '"""'), delimiter="\t")
    if len(rows) != 4:
        return False
    for row in rows:
        if len(row) != 5:
            return False
        for field in row:
            field = field.strip()
            if not field or field[0] != '"' or field[-1] != '"':
                return False
    return True


def _valid_date(year: int, month: int, day: int) -> bool:
    if not 1769 <= year <= 1821 or month > 12:
        return False
    limit = 29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31 if month in (1, 3, 5, 7, 8, 10, 12) else None
    return limit is None or day <= limit


def date_format_list(doc: Doc) -> bool:
    """custom:date_format_list: comma-separated YYYY-MM-DD dates in Napoleon's lifetime (1769-1821), each
    with a month up to 12 and a day within the month's length (month 00 and day 00 pass, as in IFBench)."""
    for item in doc.text.strip().split(","):
        match = _DATE_RE.match(item.strip())
        if match is None or not _valid_date(*(int(group) for group in match.groups())):
            return False
    return True


CHECKERS: dict[str, Checker] = {
    "custom:multiples": Checker(multiples),
    "custom:mcq_count_length": Checker(mcq_count_length),
    "custom:reverse_newline": Checker(reverse_newline),
    "custom:word_reverse": Checker(word_reverse),
    "custom:character_reverse": Checker(character_reverse),
    "custom:sentence_alphabet": Checker(sentence_alphabet),
    "custom:european_capitals_sort": Checker(european_capitals_sort),
    "custom:csv_city": Checker(csv_city),
    "custom:csv_special_character": Checker(csv_special_character),
    "custom:csv_quotes": Checker(csv_quotes),
    "custom:date_format_list": Checker(date_format_list),
}
