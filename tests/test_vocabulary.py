"""Persona vocabulary: patterns match whole words of a column name, never letters inside a word."""

from __future__ import annotations

import pytest

from analysis.features import slug
from analysis.personas.vocabulary import Vocabulary, word_match


@pytest.mark.parametrize(("name", "pattern", "expected"), [
    ("factor_eco_values", "factor_*eco*", True),
    ("factor_socio_eco", "factor_*eco*", True),
    ("factor_foreign_languages_economy_management", "factor_*eco*", False),
    ("factor_price_consciousness", "factor_*price*", True),
    ("factor_priceless_moments", "factor_*price*", False),
    ("factor_adventure", "factor_*advent*", False),
    ("behavioral_segment", "*_segment", True),
    ("share_home", "share_*", True),
    ("r_score", "*_score", True),
    ("ab", "a?", True),
    ("c_b", "[!ab]_b", True),
    ("a_b", "[!ab]_b", False),
])
def test_word_match(name, pattern, expected):
    assert word_match(name, pattern) is expected


def test_a_factor_named_economy_is_not_eco_values():
    vocab = Vocabulary.load()
    economy = vocab.describe(f"factor_{slug('Foreign languages / Economy Management')}", "numeric")
    assert economy.high == "high foreign languages economy management"
    assert economy.label == "foreign languages economy management score"


@pytest.mark.parametrize(("scale", "label", "high"), [
    ("eco_values", "eco/ethical values score", "eco-minded"),
    ("price_consciousness", "price-consciousness score", "price-conscious"),
    ("social_status", "social/status score", "status-seeking"),
    ("adventure", "adventure/novelty score", "adventurous"),
    ("thriftiness", "price-consciousness score", "price-conscious"),
])
def test_factors_named_after_configured_scales_get_their_words(scale, label, high):
    info = Vocabulary.load().describe(f"factor_{slug(scale.replace('_', ' ').capitalize())}", "numeric")
    assert (info.label, info.high) == (label, high)


def test_every_package_pattern_is_reachable():
    """A pattern no plausible column matches is dead vocabulary: each factor word matches its own slug."""
    vocab = Vocabulary.load()
    for pattern in (p for p, _ in vocab._patterns if p.startswith("factor_*") and p != "factor_*"):
        word = pattern.removeprefix("factor_*").removesuffix("*")
        assert vocab.entry(f"factor_{word}_items") == vocab.spec["attributes"][pattern], pattern


def test_every_value_label_column_has_its_own_words():
    """Personas profile every label column; one without an entry gets generic words ("low p alive high"
    was a persona name on Superstore before the interval ends had theirs)."""
    from analysis.segment import value

    vocab = Vocabulary.load()
    assert [c for c in value.LABEL_COLUMNS if c != "customer_id" and not vocab.entry(c)] == []
    ends = [vocab.describe(c, "numeric") for c in ("clv_low", "clv_high", "p_alive_low", "p_alive_high")]
    assert not any(info.trait for info in ends)  # how sure a value is never names a persona
