"""Language detection: deterministic across calls and processes, and langdetect's globals untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

from m2rl_slime.rewards.ifeval import language

SAMPLES = ["ok", "Hallo", "Bonjour tout le monde", "Ciao, come stai oggi?", "The weather is nice today."]


def test_detection_is_deterministic_in_process():
    first = [language.detect_language(s) for s in SAMPLES]
    for _ in range(3):
        assert [language.detect_language(s) for s in SAMPLES] == first
    assert first[2] == "fr" and first[4] == "en"


def test_detection_is_deterministic_across_processes():
    code = (
        "from m2rl_slime.rewards.ifeval.language import detect_language;"
        f"print([detect_language(s) for s in {SAMPLES!r}])"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str([language.detect_language(s) for s in SAMPLES])


def test_langdetect_module_globals_are_untouched():
    from langdetect import detector_factory

    language.detect_language("Some English text to detect.")
    assert detector_factory.DetectorFactory.seed is None
    assert detector_factory._factory is None


def test_undetectable_text_and_language_codes():
    assert language.detect_language("12345 !!!") is None
    assert language.normalise_language(" EN ") == "en"
    assert language.normalise_language("zh_CN") == "zh-cn"
    assert language.normalise_language("zh") == "zh"
    assert language.normalise_language("xx") is None
    assert language.language_matches("zh-tw", "zh") and not language.language_matches("en", "zh")


@pytest.mark.parametrize("text", ["这是一个完全用中文写的回答，没有其他语言。", "這是一個完全用中文寫的回答。"])
def test_chinese_matches_zh(text):
    from m2rl_slime.rewards.instruction import verify

    md = {"instruction_id_list": ["language:response_language"], "kwargs": [{"language": "zh"}]}
    assert verify(text, None, md).score == 1.0


def test_import_does_no_work():
    code = (
        "import sys; import m2rl_slime.rewards.instruction, m2rl_slime.rewards.ifeval;"
        "print('langdetect' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
