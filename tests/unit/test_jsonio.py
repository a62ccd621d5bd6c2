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
