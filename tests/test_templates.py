from __future__ import annotations

from datafast.compiler.templates import literal, parse_template


def test_mandatory_and_optional_placeholders_are_told_apart():
    t = parse_template("Write {num_samples} {{tone}} texts in {language_name} about {{tone}} and {{topic}}.")
    assert t.mandatory == {"num_samples", "language_name"}
    assert t.optional == ("tone", "topic")


def test_braces_that_wrap_no_identifier_are_literal():
    t = parse_template('Answer as {"text": "..."} or { } or {1} or {{ x }}.')
    assert t.mandatory == frozenset() and t.optional == ()
    assert t.render({}) == 'Answer as {"text": "..."} or { } or {1} or {{ x }}.'


def test_values_from_data_are_inserted_verbatim_and_never_reinterpreted():
    t = parse_template("Class {label_name}: {label_description} / {{tone}}")
    filled = t.fill({"label_name": "{tone}", "label_description": "uses {{tone}} and {label_name} ünïcødé 🎉"})
    # the inserted text contains placeholder syntax, which must survive rendering untouched
    assert filled.render({"tone": "{label_description}"}) == (
        "Class {tone}: uses {{tone}} and {label_name} ünïcødé 🎉 / {label_description}"
    )
    assert filled.optional == ("tone",)


def test_fill_keeps_unfilled_mandatory_placeholders():
    t = parse_template("{a} {b}").fill({"a": "x"})
    assert t.mandatory == {"b"}
    assert t.render({"b": "y"}) == "x y"


def test_literal_template_has_no_placeholders():
    t = literal("{num_samples} {{tone}}")
    assert t.mandatory == frozenset() and t.optional == ()
    assert t.render({}) == "{num_samples} {{tone}}"
