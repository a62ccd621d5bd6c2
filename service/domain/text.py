"""Text the service keeps: what a database can store, and what a unit code may be.

Pure rules shared by the fact checks of the core, the API's schemas and the service layer.
"""

from __future__ import annotations

import re
import unicodedata

# characters no database here can keep: NUL and the other C0 controls but tab and newlines
# (PostgreSQL refuses NUL in text), and lone UTF-16 surrogates, which a JSON body can carry as
# "\ud800" but which have no UTF-8 form
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Where ``text`` has a character that cannot be stored, in words; None if it has none."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    where = f"第{line}行第{column}列" if "\n" in text else f"第{column}个字符"
    return f"{where}是无法保存的字符 U+{ord(found.group()):04X}，请删去后重新填写"


# how much a submission may say beside its facts: the API's schemas and the admin form both read
# these, so a limit is the same whichever way the facts come in
EVIDENCE_ITEMS_MAX = 50  # references for one fact
EVIDENCE_CHARS_MAX = 500  # characters of one reference
REASON_CHARS_MAX = 2000  # characters of the general reason for a correction
FACT_REASON_CHARS_MAX = 500  # characters of the reason for one corrected fact


#: what a unit's code may be (it appears in URLs and file names), as JSON Schema writes it; in
#: JSON Schema's regular expressions "$" is the end of the text, in Python's also before a final "\n"
UNIT_CODE_PATTERN = "^[A-Za-z0-9_-]{1,64}$"


def is_unit_code(text: str) -> bool:
    return re.fullmatch("[A-Za-z0-9_-]{1,64}", text) is not None


# characters that change how text around them is shown without showing themselves: bidirectional
# controls (a name that reads one way and sorts another, U+202E turning "gucun" around) and
# zero-width characters (two names that look the same and are not); none belongs in a unit's code
# or name
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b-\u200d\u2060\ufeff]")
_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]")


def normal(text: str) -> str:
    """Text as it is kept: NFKC (a full-width "ＧＵＣＵＮ" is "GUCUN", "㈱" is "(株)"), without
    spaces at either end."""
    return unicodedata.normalize("NFKC", text).strip()


def identity_key(text: str) -> str:
    """What two codes or names share when they are the same to a reader: NFKC, case folded (NFKC
    again, as case folding can undo it) and runs of spaces as one. Unique in the database."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def invisible(text: str) -> str | None:
    """Where ``text`` has a bidirectional control or a zero-width character, in words; else None."""
    found = _INVISIBLE.search(text)
    if found is None:
        return None
    return (
        f"第{found.start() + 1}个字符是看不见的控制字符 U+{ord(found.group()):04X}"
        "（改变文字方向或零宽度），请删去后重新填写"
    )


def line_break(text: str) -> str | None:
    """Where a one-line text (a unit's name) has a tab or line break, in words; else None."""
    found = _LINE_BREAKS.search(text)
    if found is None:
        return None
    return f"第{found.start() + 1}个字符是换行或制表符 U+{ord(found.group()):04X}，名称应为一行文字"
