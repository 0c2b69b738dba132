"""Is a response's first token a verb? An offline stand-in for NLTK's POS tagger (``words:start_verb``).

IFBench tags the whole response with NLTK's averaged-perceptron tagger and asks whether the first tag
contains ``VB`` (VB, VBD, VBG, VBN, VBP, VBZ). The tagger's model is a download that offline machines
cannot fetch, so this module decides with a hand-written lexicon instead:

- a base verb from `_BASE_VERBS` (common English verbs, especially those that open instructions and
  answers: "Consider", "Imagine", "Write"), or one of its regular forms (-s, -ed, -ing, built by the
  usual spelling rules), or an irregular past form from `_IRREGULAR`;
- any other word of 5+ letters ending in "ing" or "ed" (participles open sentences: "Growing ...",
  "Based on ..."), except the listed nouns, adjectives and prepositions with those endings ("During",
  "Morning", "Hundred");
- auxiliaries that open questions ("Is", "Does", "Have", ...), but not modals ("Can": MD) and not "Are",
  which the tagger labels NNP when it opens a response.

The match ignores case. Agreement with the tagger is measured in benchmarks/eval_agreement.py and
reported in docs/rewards_if.md.
"""

from __future__ import annotations

from functools import lru_cache

_BASE_VERBS = """
accept achieve act adapt add address adjust admire admit adopt advance advise affect agree aim allow alter
analyze analyse answer apply appreciate approach arrange ask assemble assess assign assist assume attach attack
attempt attend avoid balance bake be bear beat become begin believe belong bend bind bite blend blow boil
book borrow bounce break breathe brew bring broaden browse build burn buy calculate call calm capture care
carry cast catch celebrate change charge chase check cheer choose chop claim clarify classify clean clear
climb close collect combine come commit compare compile complete compose compute conclude conduct confirm
connect consider construct contact continue contribute control convert convince cook copy count cover craft
crawl create cross cry cultivate cut dance deal debate decide declare decorate deduce define delete deliver
demonstrate deny derive describe design destroy detail detect determine develop devise die dig discover discuss
dive divide do draft drag draw dream dress drink drive drop dry earn eat edit educate eliminate embrace emerge
emphasize employ enable encourage end engage enhance enjoy ensure enter envision establish estimate evaluate
examine exchange execute exercise exist expand expect experience experiment explain explore express extend
extract face fail fall feed feel fetch fight fill find finish fix fly focus fold follow forget forgive form
formulate forward gather generate get give go grab grant greet grind grow guess guide handle hang happen hate
have hear help hide highlight hold hope hunt hurry identify ignore illustrate imagine implement improve include
increase indicate inform insert inspect install integrate interpret introduce invent investigate invite join
judge jump justify keep kick kill kneel knock know label land laugh launch lay lead lean learn leave lend let
lie lift light limit link list listen live locate look lose love maintain make manage map mark master match
measure meet memorize mention merge mix modify move multiply name navigate need negotiate note notice observe
obtain offer open operate order organize outline overcome own paint pass pause pay perform pick picture place
plant play plot point polish ponder pour practice practise praise pray predict prefer prepare present preserve
press prevent print proceed produce program promise promote protect prove provide publish pull punch push put
question quote race raise rank rate reach read realize rearrange recall receive recognize recommend record
recount redefine reduce reflect reform refuse regard reimagine reject relate relax release rely remake remain remember
remind remove render repeat rephrase replace reply report represent request require research resist resolve
respect respond rest restate restore retell retrieve return reveal reverse review revise rewrite ride ring rise
roll rotate rub run save say scan schedule search secure see seek select sell send separate serve set settle
shake shape share shift shine shoot shop shout show shut sing sink sit sketch skip sleep slide smell smile solve
sort speak specify spend spin split spread stand start state stay steal step stick stop store stretch strike
strip structure study submit substitute succeed suggest summarize supply support suppose surround survey
survive swim switch take talk taste teach tear tell tend test thank think throw tie touch trace track trade
train transform translate travel treat trim trust try turn type uncover understand unite unlock update upgrade
urge use validate value verify view visit wait wake walk want warm warn wash watch wave wear weave weigh welcome
win wish wonder work worry wrap write yield
"""

_IRREGULAR = """
ate awoke been began bent bit blew bore born bought bound broke broken brought built burnt came caught chose
chosen did done drank drawn drew driven drove eaten fed fell felt flew flown forgot forgotten fought found gave
given gone got gotten grew grown had has heard held hid hidden hung is kept knew known laid lay led left lent
let lost made meant met paid put ran read rode risen rose said sang sat saw seen sent set shook shot shown shut
slept slid sold spent split spoke spoken spun stood stole stolen struck sung swam taken taught thought threw
thrown told took tore torn understood was went were woke won wore worn wove woven written wrote
"""

_AUXILIARIES = "am is was were be been being do does did doing have has had having"

# Words with a participle-like ending that are not verbs when they open a response.
_NOT_VERBS = """
anything bed bedding beloved breed ceiling crooked during everything evening greed hundred inbred indeed king
kindred left ling morning naked nothing pudding purebred ragged red ring rugged sacred seed shed sibling
something speed spring string thing wedding wicked wing
"""


@lru_cache(maxsize=1)
def _lexicon() -> tuple[frozenset[str], frozenset[str]]:
    forms: set[str] = set(_IRREGULAR.split()) | set(_AUXILIARIES.split())
    for verb in _BASE_VERBS.split():
        forms.update(_regular_forms(verb))
    return frozenset(forms), frozenset(_NOT_VERBS.split())


def _regular_forms(verb: str) -> set[str]:
    """The base form and its -s, -ed and -ing forms by the usual spelling rules."""
    forms = {verb}
    if verb.endswith(("s", "x", "z", "ch", "sh")):
        forms.add(verb + "es")
    elif verb.endswith("y") and verb[-2:-1] not in ("a", "e", "i", "o", "u"):
        forms.add(verb[:-1] + "ies")
    else:
        forms.add(verb + "s")
    if verb.endswith("e"):
        stem = verb[:-1]
        forms.update({verb + "d", (stem if not verb.endswith(("ee", "ye", "oe")) else verb) + "ing"})
    elif verb.endswith("y") and verb[-2:-1] not in ("a", "e", "i", "o", "u"):
        forms.update({verb[:-1] + "ied", verb + "ing"})
    else:
        forms.update({verb + "ed", verb + "ing"})
        last = verb[-1]
        if len(verb) >= 3 and last not in "aeiouwxy" and verb[-2] in "aeiou" and verb[-3] not in "aeiou":
            forms.update({verb + last + "ed", verb + last + "ing"})  # stop -> stopped, plan -> planning
    return forms


def looks_like_verb(word: str) -> bool:
    """True when `word` (any case) reads as a verb form opening a sentence."""
    low = word.lower()
    forms, not_verbs = _lexicon()
    if low in not_verbs or not low.isalpha():
        return False
    if low in forms:
        return True
    return len(low) >= 5 and low.endswith(("ing", "ed"))


def starts_with_verb(tokens: list[str]) -> bool:
    """words:start_verb on a tokenized response: the first token is a verb form."""
    return bool(tokens) and looks_like_verb(tokens[0])
