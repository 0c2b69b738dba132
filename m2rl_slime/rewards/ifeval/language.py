"""Deterministic language detection with a private, seeded langdetect factory.

langdetect draws random n-gram samples; unseeded, the same text can be labelled differently across
calls. IFEval fixes this by setting the module-global ``DetectorFactory.seed``, which silently changes
every other langdetect user in the process. We build our own `DetectorFactory`, seed that instance,
and load its profiles lazily, once per process (about a second on first use; nothing at import).
"""

from __future__ import annotations

import threading
from typing import Any

_SEED = 0
_lock = threading.Lock()
_factory: Any = None


def _get_factory() -> Any:
    global _factory
    if _factory is None:
        with _lock:
            if _factory is None:
                from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

                factory = DetectorFactory()
                factory.load_profile(PROFILES_DIRECTORY)
                factory.set_seed(_SEED)  # an instance attribute: the class-level seed is untouched
                _factory = factory
    return _factory


def supported_languages() -> frozenset[str]:
    """The language codes the detector can return (``zh-cn``/``zh-tw`` for Chinese), plus ``zh``."""
    return frozenset(_get_factory().get_lang_list()) | {"zh"}


def normalise_language(code: str) -> str | None:
    """Lower-cased code if the detector knows it (``zh`` stands for either Chinese variant), else None."""
    low = code.strip().lower().replace("_", "-")
    return low if low in supported_languages() else None


def detect_language(text: str) -> str | None:
    """The most probable language of `text`, or None when the text has no usable features.

    Deterministic: the same text always gets the same answer, in any process.
    """
    from langdetect.lang_detect_exception import LangDetectException

    detector = _get_factory().create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException:
        return None


def language_matches(detected: str, expected: str) -> bool:
    """True when `detected` is `expected`, or a regional variant of it (``zh-cn`` matches ``zh``)."""
    return detected == expected or detected.split("-", 1)[0] == expected
