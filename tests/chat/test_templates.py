import pytest

from hearth.chat.templates import ChatTemplate, TemplateRenderError


def test_renders_chatml_by_default() -> None:
    out = ChatTemplate(None).render([{"role": "user", "content": "hi"}])
    assert out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_sandbox_refuses_reaching_for_python_internals() -> None:
    evil = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(TemplateRenderError, match="unsafe"):
        ChatTemplate(evil).render([{"role": "user", "content": "hi"}])


def test_sandbox_is_immutable() -> None:
    evil = "{% set _ = messages.append({'role': 'x'}) %}{{ messages | length }}"
    with pytest.raises(TemplateRenderError):
        ChatTemplate(evil).render([{"role": "user", "content": "hi"}])


def test_raise_exception_becomes_a_client_error() -> None:
    strict = "{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}{% endif %}ok"
    with pytest.raises(TemplateRenderError, match="user first"):
        ChatTemplate(strict).render([{"role": "assistant", "content": "x"}])


def test_special_tokens_and_tojson_are_available() -> None:
    tpl = ChatTemplate("{{ bos_token }}{{ messages[0] | tojson }}", bos_token="<s>")
    assert tpl.render([{"role": "user", "content": "é"}]) == '<s>{"role": "user", "content": "é"}'


def test_a_template_that_does_not_compile_is_reported() -> None:
    with pytest.raises(ValueError, match="does not compile"):
        ChatTemplate("{% for %}")
