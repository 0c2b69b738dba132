"""`<think>...</think>` handling shared by every text verifier (not a slime hook). Linear in the response length."""

from __future__ import annotations

from .result import Reason

THINK_CLOSE = "</think>"
# End-of-turn markers that appear at the end of a response decoded with skip_special_tokens=False.
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>")


def final_segment(response: str, *, require_thinking: bool) -> tuple[str | None, Reason | None]:
    """Return the part of `response` that is graded.

    Args:
        response: The full model response (reasoning included).
        require_thinking: If True (the paper's setting), a response without `</think>` is not graded.

    Returns:
        `(text, None)` with the text after the last `</think>` (or the whole response when thinking is
        not required and no tag is present), end-of-turn markers removed; or `(None, reason)` when the
        response cannot be graded.
    """
    cut = response.rfind(THINK_CLOSE)
    if cut >= 0:
        text = response[cut + len(THINK_CLOSE) :]
    elif require_thinking:
        return None, Reason.NO_THINK_CLOSE
    else:
        text = response
    text = text.strip()
    end = len(text)  # markers are cut by moving `end`, not by copying: linear in a run of markers
    stripped = True
    while stripped:
        stripped = False
        for marker in END_MARKERS:
            if text.endswith(marker, 0, end):
                end -= len(marker)
                while end > 0 and text[end - 1].isspace():
                    end -= 1
                stripped = True
    text = text[:end]
    if not text:
        return None, Reason.EMPTY_RESPONSE
    return text, None
