"""The service's JSON writer: exact decimals, and valid JSON even for what orjson refuses."""

import json
from decimal import Decimal

from service.jsonio import dumps_bytes


def test_decimals_are_exact_strings_in_plain_digits():
    data = json.loads(
        dumps_bytes(
            {
                "a": Decimal("1E+1"),
                "b": Decimal("0.10"),
                "c": Decimal("-0"),
                "d": Decimal("123456789012.345678"),
            }
        )
    )
    assert data == {"a": "10", "b": "0.1", "c": "0", "d": "123456789012.345678"}


def test_keys_keep_their_order_and_chinese_stays_chinese():
    text = dumps_bytes({"乙": 1, "甲": [True, None, "总分"]}).decode("utf-8")
    assert text == '{"乙":1,"甲":[true,null,"总分"]}'


def test_what_orjson_refuses_is_still_written_as_valid_json():
    # a lone surrogate (a JSON request can carry one, an error message may echo it) and a 70-bit integer
    value = {"message": "“x\ud800”不是可选值", "n": 2**70, "points": Decimal("2.50")}
    body = dumps_bytes(value)
    body.decode("ascii")  # escaped: valid UTF-8 whatever it holds
    assert json.loads(body) == {"message": "“x\ud800”不是可选值", "n": 2**70, "points": "2.5"}


def test_pretty_output_for_debugging():
    assert dumps_bytes({"a": [1]}, pretty=True).decode() == '{\n  "a": [\n    1\n  ]\n}'


def test_keys_that_are_not_text_are_written_as_orjson_writes_them_with_non_str_keys():
    # text keys are written without OPT_NON_STR_KEYS (faster); any other key is written as before
    import datetime
    import enum

    import orjson

    class Level(enum.StrEnum):
        HIGH = "高"

    class Label(str):
        pass

    value = {
        1: Decimal("2.50"),
        Label("甲"): [1],
        Level.HIGH: True,
        None: 0,
        datetime.date(2026, 1, 2): "x",
        "乙": {2: "y"},
    }
    expected = orjson.dumps(
        value, default=lambda v: "2.5", option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2
    )
    assert dumps_bytes(value, pretty=True) == expected
    assert dumps_bytes(value) == orjson.dumps(
        value, default=lambda v: "2.5", option=orjson.OPT_NON_STR_KEYS
    )
    # a non-text key beside what orjson refuses still ends in the standard library's valid JSON
    assert json.loads(dumps_bytes({1: "\ud800", "n": 2**70})) == {"1": "\ud800", "n": 2**70}


def test_text_keys_give_the_same_bytes_as_with_non_str_keys():
    import orjson

    value = {"总分": Decimal("85.50"), "条款": [{"id": "1", "facts": {"a": None, "b": True}}]}
    assert dumps_bytes(value) == orjson.dumps(
        value, default=lambda v: "85.5", option=orjson.OPT_NON_STR_KEYS
    )
