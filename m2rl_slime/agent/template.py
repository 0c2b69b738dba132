"""Token-exact conversation building with a tokenizer's chat template.

The prompt is rendered once (or taken as-is when slime's `--apply-chat-template` already rendered it; M2RL's
rollout rendered it a second time). After that the conversation only grows by exact token deltas: the model's
own ids, then
for each tool turn the template's text between the end of the model's turn and the next assistant header
(end-of-turn newline, the tool-response turn, `<|im_start|>assistant\\n`, a thinking stub if the template adds
one). That delta is taken from the template itself by rendering a marker conversation, so the ids a turn
is conditioned on are exactly the ids that are trained on (M2RL's rollout trained on other ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import M2RLError

_MARK = "M2RL-ASSISTANT-MARK-5f0c"
_BASE = ({"role": "user", "content": "."}, {"role": "assistant", "content": _MARK})


class ChatRenderer:
    """Renders prompts and tool-turn deltas for one tokenizer and one set of chat-template kwargs.

    Args:
        tokenizer: A Hugging Face tokenizer with a chat template (`apply_chat_template`, `encode`, `decode`).
        chat_template_kwargs: Extra template variables (e.g. `{"enable_thinking": False}`), the same slime
            passes through `--apply-chat-template-kwargs`.
    """

    def __init__(self, tokenizer: Any, chat_template_kwargs: Mapping[str, Any] | None = None) -> None:
        self.tokenizer = tokenizer
        self.kwargs = dict(chat_template_kwargs or {})
        self._close_ids: list[int] | None = None

    def render(self, messages: Sequence[Mapping[str, Any]], *, tools: Any = None, generation_prompt: bool) -> str:
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages],
            tools=tools or None,
            add_generation_prompt=generation_prompt,
            tokenize=False,
            **self.kwargs,
        )
        if not isinstance(text, str):
            raise M2RLError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, expected str")
        return text

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def prompt_ids(self, prompt: str | Sequence[Mapping[str, Any]], tools: Any = None) -> list[int]:
        """Token ids of the prompt, ending with the assistant generation header.

        A string prompt was already rendered by slime (`--apply-chat-template`, tools included) and is only
        tokenized; a message list is rendered here, once, with the task's tools.
        """
        if isinstance(prompt, str):
            return self.encode(prompt)
        if not isinstance(prompt, Sequence) or not all(isinstance(m, Mapping) for m in prompt):
            raise M2RLError(f"sample.prompt must be a string or a list of chat messages, got {type(prompt).__name__}")
        return self.encode(self.render(prompt, tools=tools, generation_prompt=True))

    def _after_mark(self, messages: Sequence[Mapping[str, Any]], generation_prompt: bool) -> str:
        text = self.render(messages, generation_prompt=generation_prompt)
        cut = text.rfind(_MARK)
        if cut < 0:
            raise M2RLError("the chat template dropped an assistant message's content; cannot derive turn deltas")
        return text[cut + len(_MARK) :]

    def close_ids(self) -> list[int]:
        """Ids the template puts after an assistant message's content (Qwen3: `<|im_end|>`, `\\n`)."""
        if self._close_ids is None:
            self._close_ids = self.encode(self._after_mark(_BASE, generation_prompt=False))
        return self._close_ids

    def observation_ids(self, tool_messages: Sequence[Mapping[str, Any]], model_ids: Sequence[int]) -> list[int]:
        """The exact ids between the model's last token and the next assistant turn's first generated token.

        Args:
            tool_messages: `{"role": "tool", "name": ..., "content": ...}` messages answering the turn.
            model_ids: The ids the model generated in the turn (their ending decides how much of the
                end-of-turn marker the model already produced, e.g. its `<|im_end|>` EOS).
        """
        text = self._after_mark([*_BASE, *tool_messages], generation_prompt=True)
        missing = [m["name"] for m in tool_messages if m.get("content") and str(m["content"]) not in text]
        if missing:
            raise M2RLError(f"the chat template does not render tool messages (output of {missing[0]!r} is missing)")
        suffix = self.encode(text)
        close = self.close_ids()
        if suffix[: len(close)] != close:
            raise M2RLError("the chat template ends an assistant turn differently when tool messages follow it")
        for k in range(len(close), 0, -1):
            if len(model_ids) >= k and list(model_ids[-k:]) == close[:k]:
                return suffix[k:]
        return suffix
