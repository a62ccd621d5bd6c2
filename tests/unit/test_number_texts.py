"""The numbers' texts a trace writes, cached by value (``numbers.Texts``): the same text as the
functions give, for every spelling of a value, and never more than ``Texts.HELD`` values held."""

from decimal import Decimal

from service.domain import numbers
from service.domain.numbers import EQUALS_WORDS, PLAIN, POINTS_WORDS, Texts


def test_equal_values_spelled_differently_give_the_text_of_the_value():
    for spellings, text in (
        (("2.5", "2.50", "25E-1", "2.500000"), "2.5"),
        (("10", "1E+1", "10.00"), "10"),
        (("0", "-0", "0.000", "-0E+3"), "0"),
    ):
        for spelling in spellings:
            assert numbers.plain(Decimal(spelling)) == text
            assert PLAIN[Decimal(spelling)] == text
    assert numbers.points_words(Decimal("4.995")) == "约5.00"
    assert POINTS_WORDS[Decimal("4.9950")] == "约5.00"
    assert numbers.equals_words(Decimal("1.50")) == "=1.5"
    assert EQUALS_WORDS[Decimal("0.3333")] == "≈0.33"


def test_the_cache_drops_its_oldest_values_when_full_so_it_never_grows_past_its_size():
    texts = Texts(str)
    for i in range(Texts.HELD * 3 + 7):
        assert texts[Decimal(i)] == str(i)
        assert len(texts) <= Texts.HELD
    # the newest values stay: a batch's values are not all written again after one more value
    newest = [Decimal(i) for i in range(Texts.HELD * 3 + 7 - Texts.HELD // 2, Texts.HELD * 3 + 7)]
    assert all(value in texts for value in newest)
    # a NaN is never equal to itself: each one is a new entry, and still the size is held
    for _ in range(Texts.HELD + 10):
        assert texts[Decimal("NaN")] == "NaN"
        assert len(texts) <= Texts.HELD
