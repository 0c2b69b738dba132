"""Rendering with the chat template: prompts rendered once, tool-turn deltas taken from the template itself."""

from __future__ import annotations

import pytest
from agent_harness import QWEN3_STYLE_TEMPLATE, call_text

from m2rl_slime.agent.template import ChatRenderer
from m2rl_slime.errors import M2RLError

TOOL = [{"role": "tool", "name": "email_search_emails", "content": "No emails found."}]


@pytest.fixture(scope="module")
def prompt(demo_rows, tool_schemas):
    return demo_rows[0]["prompt"], tool_schemas


def test_a_pretemplated_prompt_is_not_templated_again(tokenizer, prompt):
    messages, tools = prompt
    renderer = ChatRenderer(tokenizer)
    rendered = renderer.render(messages, tools=tools, generation_prompt=True)
    assert rendered.count("<|im_start|>system") == 1 and rendered.endswith("<|im_start|>assistant\n")
    from_messages = renderer.prompt_ids(messages, tools)
    from_string = renderer.prompt_ids(rendered)  # slime's --apply-chat-template output
    assert from_string == from_messages == tokenizer.encode(rendered, add_special_tokens=False)
    assert "email_reply_email" in tokenizer.decode(from_messages)


def test_observation_delta_after_the_models_eos(tokenizer):
    renderer = ChatRenderer(tokenizer)
    model_ids = tokenizer.encode(call_text("email_search_emails", query="x"), add_special_tokens=False)
    model_ids.append(tokenizer.eos_token_id)
    delta = renderer.observation_ids(TOOL * 2, model_ids)
    assert tokenizer.decode(delta) == (
        "\n<|im_start|>user\n<tool_response>\nNo emails found.\n</tool_response>"
        "\n<tool_response>\nNo emails found.\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )
    assert renderer.close_ids() == tokenizer.encode("<|im_end|>\n", add_special_tokens=False)


def test_a_turn_without_eos_is_closed_by_the_delta(tokenizer):
    renderer = ChatRenderer(tokenizer)
    model_ids = tokenizer.encode("</tool_call>", add_special_tokens=False)  # e.g. stopped on a stop string
    assert tokenizer.decode(renderer.observation_ids(TOOL, model_ids)).startswith("<|im_end|>\n<|im_start|>user\n")


def test_template_kwargs_reach_the_generation_header(tokenizer):
    renderer = ChatRenderer(tokenizer, {"enable_thinking": False})
    delta = renderer.observation_ids(TOOL, [tokenizer.eos_token_id])
    assert tokenizer.decode(delta).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_a_template_that_drops_assistant_content_is_rejected(tokenizer):
    class Dropping:
        def apply_chat_template(self, messages, **kwargs):
            return "".join(m["content"] for m in messages if m["role"] != "assistant")

        def encode(self, text, add_special_tokens=False):
            return tokenizer.encode(text, add_special_tokens=add_special_tokens)

    with pytest.raises(M2RLError, match="dropped an assistant message"):
        ChatRenderer(Dropping()).observation_ids(TOOL, [1])

    class NoTools(Dropping):
        def apply_chat_template(self, messages, **kwargs):
            return "".join(m["content"] for m in messages if m["role"] != "tool")

    with pytest.raises(M2RLError, match="does not render tool messages"):
        ChatRenderer(NoTools()).observation_ids(TOOL, [1])
    with pytest.raises(M2RLError, match="string or a list of chat messages"):
        ChatRenderer(tokenizer).prompt_ids(42)
    assert QWEN3_STYLE_TEMPLATE  # the template under test is the harness's
