"""BFCL's AST checker: are the decoded calls one of the possible answers? (bfcl-eval's rules, reproduced.)

Inputs are the entry's function docs (BFCL's own schema, before any conversion for the prompt), the decoded
calls ``[(name, arguments), ...]`` and the possible answers ``[{function: {param: [accepted values]}}]``.
The rules, as bfcl-eval applies them:

- *simple* categories need exactly one call, checked against the first function doc; *multiple* ones need
  exactly one call, checked against the doc of the expected function; every *parallel* category (including
  ``parallel_multiple``) uses the no-order checker: each expected call, in order, takes the first unmatched
  model call that satisfies it. That matching is greedy: when an earlier expected call also accepts the value
  of a later one, a correct but reordered answer can be rejected (BFCL ``parallel_178`` is such an entry).
- Per call: the name must match; every required parameter must be present; every given parameter must be
  in the doc and in the possible answer; a parameter missing from the call must list ``""`` (optional).
- Types (Python): the JSON type must be the declared one (an int is accepted for ``float``; ``tuple`` and
  ``array`` check one level of element types); a value whose type is the possible answer's type instead is
  a "variable" and is compared exactly. Java and JavaScript values must be source strings, converted first
  (`java_literals`, `js_literals`).
- Values: strings compare after removing `` ,./-_*^``, lower-casing and turning ``'`` into ``"``; lists compare
  element-wise after the same string normalisation; dicts compare per key against the possible dicts; lists
  of dicts compare dict by dict; anything else must equal one listed value (Python ``==``: ``1 == 1.0``).

Where the reference checker itself raises on an input, `CheckerCrash` is raised (the caller reports it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import LabelError
from . import java_literals, js_literals

PYTHON_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list, "dict": dict,
    "any": str,
}  # fmt: skip
_NESTED_PYTHON = ("array", "tuple")
_NESTED_COLLECTIONS = ("Array", "ArrayList", "array")
_STRIP = re.compile(r"[ ,./\-_*^]")
Call = tuple[Any, Mapping[str, Any]]


class CheckerCrash(Exception):
    """The reference checker raises on this input (its verdict is undefined; reported, never a silent score)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checker's conclusion: valid, or BFCL's error type and a message."""

    valid: bool
    error_type: str = ""
    error: str = ""


VALID = Verdict(True)


def _fail(error_type: str, error: str) -> Verdict:
    return Verdict(False, error_type, error)


def normalize(text: str) -> str:
    """BFCL's string normalisation: drop `` ,./-_*^``, lower-case, ``'`` -> ``"``."""
    return _STRIP.sub("", text).lower().replace("'", '"')


def _answer_type(possible: Sequence[Any]) -> type | None:
    for answer in possible:
        if answer != "":
            return type(answer)
    return None


def _type_check(param: str, value: Any, possible: Sequence[Any], expected: type, nested: type | None) -> Verdict:
    """Returns VALID, `Verdict(True, "variable")` when the value is a variable, or the type error."""
    answer_type = _answer_type(possible)
    variable = answer_type is not None and answer_type is not expected
    nested_failed = False
    if type(value) is expected:
        if nested is None:
            return Verdict(True, "variable") if variable else VALID
        for item in possible:
            ok = True
            if type(item) is list:
                ok = all(_type_check(param, element, item, nested, None).valid for element in value)
            if ok:
                return Verdict(True, "variable") if variable else VALID
        nested_failed = True
    if answer_type is not None and type(value) is answer_type:
        if nested_failed:  # the reference returns its already-failed result here
            return _fail("type_error:nested", f"nested type check failed for {param!r}: {value!r}")
        return Verdict(True, "variable")
    return _fail("type_error:simple", f"incorrect type for {param!r}: expected {expected.__name__}, got {value!r}")


def _normalized(items: Any, where: str) -> list[Any]:
    if not isinstance(items, (list, str)):
        raise LabelError(f"possible answer of {where} is a {type(items).__name__}, expected a list")
    return [normalize(x) if type(x) is str else x for x in items]


def _check_string(param: str, value: str, possible: Sequence[Any]) -> Verdict:
    if normalize(value) in [normalize(a) for a in possible if type(a) is str]:
        return VALID
    return _fail("value_error:string", f"invalid value for {param!r}: {value!r}")


def _check_list(param: str, value: list, possible: Sequence[Any]) -> Verdict:
    if _normalized(value, param) in [_normalized(a, param) for a in possible]:
        return VALID
    return _fail("value_error:list/tuple", f"invalid value for {param!r}: {value!r}")


def _check_dict(param: str, value: Any, possible: Sequence[Any]) -> Verdict:
    result = _fail("dict_checker:unclear", f"no possible dict for {param!r}")
    for answer in possible:
        if answer == "":
            continue
        if not isinstance(value, dict):
            raise CheckerCrash(f"a {type(value).__name__} is checked as a dict for {param!r}")
        if not isinstance(answer, dict):
            raise LabelError(f"possible answer of {param!r} is {answer!r}, expected a dict")
        result, ok = _fail("dict_checker:unclear", ""), True
        for key, item in value.items():
            if key not in answer:
                result, ok = _fail("value_error:dict_key", f"unexpected dict key {key!r}"), False
                break
            if (normalize(item) if type(item) is str else item) not in _normalized(answer[key], f"{param}.{key}"):
                result, ok = _fail("value_error:dict_value", f"invalid value for {key!r}: {item!r}"), False
                break
        for key, items in answer.items():
            if key not in value and "" not in items:
                result, ok = _fail("value_error:dict_key", f"missing dict key {key!r}"), False
                break
        if ok:
            return VALID
    return result


def _check_list_of_dicts(param: str, value: list, possible: Sequence[Any]) -> Verdict:
    result = _fail("list_dict_checker:unclear", f"no possible list for {param!r}")
    for answer in possible:
        if not isinstance(answer, (list, str)):
            raise LabelError(f"possible answer of {param!r} is {answer!r}, expected a list of dicts")
        if len(value) != len(answer):
            result = _fail("value_error:list_dict_count", f"wrong number of dicts in {param!r}")
            continue
        ok = True
        for element, expected in zip(value, answer):
            result = _check_dict(param, element, [expected])
            if not result.valid:
                ok = False
                break
        if ok:
            return VALID
    return result


def _declared(param: str, spec: Mapping[str, Any], mapping: Mapping[str, type], language: str) -> tuple[str, type]:
    declared = spec.get("type")
    if declared not in mapping:
        raise LabelError(f"parameter {param!r} has type {declared!r}, which the {language} checker does not know")
    return declared, mapping[declared]


def _items_type(param: str, spec: Mapping[str, Any]) -> str:
    items = spec.get("items")
    if not isinstance(items, Mapping) or "type" not in items:
        raise LabelError(f"parameter {param!r} is a collection without an items type")
    return items["type"]


def _converted(param: str, value: Any, spec: Mapping[str, Any], language: str) -> tuple[Any, str, type, type | None]:
    """(value after conversion, declared type, its Python type, the element type) for one parameter."""
    if language == "python":
        declared, expected = _declared(param, spec, PYTHON_TYPES, language)
        nested = PYTHON_TYPES.get(_items_type(param, spec)) if declared in _NESTED_PYTHON else None
        if declared in _NESTED_PYTHON and nested is None:
            raise LabelError(f"parameter {param!r} has an items type the checker does not know")
        if declared == "float" and type(value) is int:
            value = float(value)
        return value, declared, expected, nested
    module, mapping = (
        (java_literals, java_literals.JAVA_TYPES) if language == "java" else (js_literals, js_literals.JS_TYPES)
    )
    declared, expected = _declared(param, spec, mapping, language)
    if type(value) is not str:
        return None, declared, expected, None
    nested = None
    try:
        if declared in _NESTED_COLLECTIONS:
            items = _items_type(param, spec)
            if items not in mapping:
                raise LabelError(f"parameter {param!r} has element type {items!r}, unknown to the {language} checker")
            nested = mapping[items]
            value = module.convert(value, declared, items)
        else:
            value = module.convert(value, declared)
    except (java_literals.UnsupportedJavaType, js_literals.UnsupportedJsType) as exc:
        raise LabelError(f"parameter {param!r}: {exc}") from None
    except ValueError as exc:
        raise CheckerCrash(f"converting {param!r} raised {exc}") from None
    return value, declared, expected, nested


def _check_value(param: str, value: Any, possible: Sequence[Any], expected: type, nested: type | None) -> Verdict:
    if expected is dict:
        return _check_dict(param, value, possible)
    if expected is list and nested is dict:
        return _check_list_of_dicts(param, value, possible)
    if expected is str:
        return _check_string(param, value, possible)
    if expected is list:
        return _check_list(param, value, possible)
    return VALID if value in possible else _fail("value_error:others", f"invalid value for {param!r}: {value!r}")


def check_call(doc: Mapping[str, Any], call: Call, answer: Mapping[str, Any], language: str, dotted: bool) -> Verdict:
    """One model call against one expected call ``{function: {param: [values]}}`` (BFCL's simple checker).

    Args:
        doc: The function doc the expected call refers to.
        call: The model's ``(name, arguments)``.
        answer: The expected call.
        language: ``python``, ``java`` or ``javascript``.
        dotted: True when the prompt's tool names had their dots replaced by underscores.
    """
    parameters = doc.get("parameters") if isinstance(doc, Mapping) else None
    if not isinstance(parameters, Mapping) or "properties" not in parameters or "required" not in parameters:
        raise LabelError(f"function doc {doc!r:.200} lacks parameters.properties or parameters.required")
    if not isinstance(answer, Mapping) or len(answer) != 1:
        raise LabelError(f"expected call {answer!r:.200} is not one {{function: {{param: values}}}} object")
    possible = next(iter(answer.values()))
    if not isinstance(possible, Mapping):
        raise LabelError(f"expected call {answer!r:.200} does not map parameters to value lists")
    name = re.sub(r"\.", "_", doc["name"]) if dotted and "." in doc["name"] else doc["name"]
    properties, required = parameters["properties"], parameters["required"]
    model_name, params = call
    if model_name != name:
        return _fail("simple_function_checker:wrong_func_name", f"function {name!r} not found in the model output")
    for param in required:
        if param not in params:
            return _fail("simple_function_checker:missing_required", f"missing required parameter {param!r}")
    for param, raw in params.items():
        if param not in properties or param not in possible:
            return _fail("simple_function_checker:unexpected_param", f"unexpected parameter {param!r}")
        value, declared, expected, nested = _converted(param, raw, properties[param], language)
        if language != "python" and type(raw) is not str:
            kind = "java" if language == "java" else "js"
            return _fail(f"type_error:{kind}", f"{param!r} must be a source string, got {type(raw).__name__}")
        typed = _type_check(param, value, possible[param], expected, nested)
        if not typed.valid:
            return typed
        if typed.error_type != "variable":
            verdict = _check_value(param, value, possible[param], expected, nested)
            if not verdict.valid:
                return verdict
            if expected in (dict, list, str):
                continue
        if value not in possible[param]:
            return _fail("value_error:others", f"invalid value for {param!r}: {value!r}")
    for param, accepted in possible.items():
        if param not in params and "" not in accepted:
            return _fail("simple_function_checker:missing_optional", f"parameter {param!r} is not optional")
    return VALID


def _doc_named(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for doc in functions:
        if doc.get("name") == name:
            return doc
    raise LabelError(f"the possible answer calls {name!r}, which is not among the entry's functions")


def check(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    possible_answer: Sequence[Mapping[str, Any]],
    category: str,
    language: str,
    *,
    dotted: bool = False,
) -> Verdict:
    """BFCL's AST verdict for one entry (see the module docstring).

    Raises:
        LabelError: the entry's docs or possible answers are malformed.
        CheckerCrash: the reference checker raises on this input.
    """
    if not possible_answer and "parallel" not in category:
        raise LabelError("the entry has no possible answer")
    if "parallel" in category:
        if len(calls) != len(possible_answer):
            return _fail("parallel_function_checker_no_order:wrong_count", "wrong number of functions")
        matched: set[int] = set()
        for i, answer in enumerate(possible_answer):
            doc = _doc_named(functions, next(iter(answer)))
            verdict = VALID
            for index, call in enumerate(calls):
                if index in matched:
                    continue
                verdict = check_call(doc, call, answer, language, dotted)
                if verdict.valid:
                    matched.add(index)
                    break
            if not verdict.valid:
                return _fail(
                    "parallel_function_checker_no_order:cannot_find_match", f"no model call matches expected call {i}"
                )
        return VALID
    if "multiple" in category:
        if len(calls) != len(possible_answer):
            return _fail("multiple_function_checker:wrong_count", "wrong number of functions")
        return check_call(
            _doc_named(functions, next(iter(possible_answer[0]))), calls[0], possible_answer[0], language, dotted
        )
    if len(calls) != 1:
        return _fail("simple_function_checker:wrong_count", "wrong number of functions")
    return check_call(functions[0], calls[0], possible_answer[0], language, dotted)
