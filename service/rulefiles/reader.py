"""Typed reading of YAML nodes, with the position of every key and value.

The YAML text is *composed* (not constructed) so that every scalar keeps its
source text and position: ``0.25`` becomes ``Decimal("0.25")`` straight from
the text, never via a binary float.  Each field of each object is declared in
``service.rulefiles.spec``; anything else is an error with a suggestion.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from _ruamel_yaml import CParser  # libyaml: scans, parses and composes in C
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from service.domain import expressions as ex
from service.domain.model import Interval
from service.domain.numbers import number_problem

from .errors import RuleFileError

TAG = "tag:yaml.org,2002:"


class Located(dict):
    """A mapping read from YAML, remembering where each key and value was."""

    line: int = 1
    column: int = 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys_at: dict[str, tuple[int, int]] = {}
        self.values_at: dict[str, tuple[int, int]] = {}
        self.nodes: dict[str, Node] = {}

    def at(self, key: str | None = None, value: bool = True) -> tuple[int, int]:
        if key is None:
            return self.line, self.column
        table = self.values_at if value else self.keys_at
        return table.get(key, (self.line, self.column))


class LocatedList(list):
    line: int = 1
    column: int = 1

    def __init__(self, *args):
        super().__init__(*args)
        self.items_at: list[tuple[int, int]] = []


def pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


@dataclass
class Context:
    file: str
    errors: list = field(default_factory=list)

    def error(self, where: tuple[int, int], message: str) -> None:
        self.errors.append(RuleFileError(self.file, where[0], where[1], message))


#: Deepest nesting of lists and mappings a rule file may have.  The deepest shipped file nests
#: 10 levels (as the pre-scan below counts them); libyaml composes recursively in C, and 30,000
#: levels of ``[`` (a 60 KB file) overflow the C stack and kill the process outright.
MAX_NESTING = 40

# YAML's printable characters (YAML 1.2, 5.1); anything else the YAML reader refuses outright
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# line breaks YAML counts but an editor does not show as a new line (see ``_editor_positions``)
_ODD_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


@dataclass(frozen=True)
class _Mark:
    line: int  # 0-based, as ruamel's marks
    column: int
    index: int


def where_in(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` as an editor shows them.

    A policy officer's editor starts a new line at LF (a CRLF pair is one line end); YAML also
    breaks lines at a lone CR, NEL (U+0085), U+2028 and U+2029, which text pasted from Word or
    a PDF carries, so its own line numbers drift by one at each of them.  Positions are
    therefore counted here from the character offset: lines by LF only, columns in characters.
    """
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


def _problems_before_parsing(text: str, ctx: Context) -> bool:
    """Refuse what the YAML parser must never see; True if the text may be parsed."""
    found = 0
    for m in _UNPRINTABLE.finditer(text):
        ctx.error(
            where_in(text, m.start()),
            f"含有不允许的控制字符 U+{ord(m.group()):04X}（看不见，多见于从 Word 或 PDF 粘贴的文字），"
            "请删去该字符",
        )
        found += 1
        if found >= 10:
            break
    if found:
        return False
    deep = nesting_beyond(text, MAX_NESTING)
    if deep is not None:
        ctx.error(
            where_in(text, deep),
            f"列表与映射嵌套过深：规则文件最多嵌套{MAX_NESTING}层，请检查括号“[”“{{”是否配对、缩进是否正确",
        )
        return False
    return True


_FLOW = re.compile(r"""[\[\]{}"'#]""")
_DOUBLE_END = re.compile(r'(?:[^"\\]|\\.)*"')
_SINGLE_END = re.compile(r"(?:[^']|'')*'")
_COMPACT = re.compile(r"(?:[-?](?: +|$))+")
# a block scalar's header (| or >) ending a line with no brackets or quotes before it
_BLOCK_HEADER = re.compile(
    r"^\s*(?:[-?]\s+)*(?:[^\s\[\]{}#'\"][^\[\]{}#'\"]*?:\s+)?[|>][-+0-9]*\s*(?:#.*)?$"
)
# every line break YAML knows (an editor shows fewer, see ``where_in``; nesting follows YAML)
_BREAKS = re.compile("(\r\n|[\n\r\x85\u2028\u2029])")


def nesting_beyond(text: str, limit: int) -> int | None:
    """Character offset where lists and mappings nest deeper than ``limit``, or None.

    A cheap scan of the text, before any parsing: flow brackets outside quoted scalars and
    comments, plus block nesting estimated from the indentation (two levels per indentation
    step, since a list may stand at its key's indentation, and one per compact ``- `` item).
    It errs towards counting too deep, never too shallow."""
    flow = 0  # open flow brackets
    quote = ""  # the quote of a quoted scalar continuing onto the next line
    indents: list[int] = []
    block_depth = 0
    literal_at: int | None = None  # indentation of a block scalar's header line
    parts = _BREAKS.split(text)  # line, break, line, break, ..., line
    offset = 0
    for n in range(0, len(parts), 2):
        line = parts[n]
        start_of_line = offset
        offset += len(line) + (len(parts[n + 1]) if n + 1 < len(parts) else 0)
        pos = node_start = 0
        if not quote and not flow:
            stripped = line.lstrip(" ")
            indent = len(line) - len(stripped)
            if literal_at is not None:
                if not stripped.strip() or indent > literal_at:
                    continue  # a line of a block scalar (| or >): text, not structure
                literal_at = None
            if not stripped.strip() or stripped.startswith("#"):
                continue
            while indents and indent < indents[-1]:
                indents.pop()
            if not indents or indent > indents[-1]:
                indents.append(indent)
            compact = _COMPACT.match(stripped)
            items = compact.group().count("-") + compact.group().count("?") if compact else 0
            block_depth = 2 * len(indents) + items
            if block_depth > limit:
                return start_of_line + indent
            if _BLOCK_HEADER.match(line):
                literal_at = indent
                continue
            pos = indent
            node_start = indent + (len(compact.group()) if compact else 0)
        tagged = _TAG_OR_ANCHOR.search(line)
        tag_at = tagged.start() if tagged else len(line)
        # each event below costs O(1) but for the blanks before it: a line of a megabyte is
        # scanned in linear time whatever it holds
        while pos <= len(line):
            if quote:
                end = (_DOUBLE_END if quote == '"' else _SINGLE_END).match(line, pos)
                if end is None:
                    break  # the quoted scalar goes on over the next line
                quote, pos = "", end.end()
                continue
            m = _FLOW.search(line, pos)
            if m is None:
                break
            c, at = m.group(), m.start()
            pos = at + 1
            j = at - 1  # the last character before this one that is not a blank
            while j >= 0 and line[j] in " \t":
                j -= 1
            last = line[j] if j >= 0 else ""
            previous = line[at - 1] if at else ""
            if c == "#":
                if at == 0 or previous in " \t":
                    break  # a comment
            elif c in "[{":
                # inside flow brackets every bracket is structure; outside, one that starts a
                # node (after an indicator, a tag or an anchor) is; counting one that is text
                # only errs towards too deep (so any tag or anchor earlier on the line will do)
                if flow or not last or last in ":-?,[{" or tag_at < at:
                    flow += 1
                    if block_depth + flow > limit:
                        return start_of_line + at
            elif c in "]}":
                flow = max(flow - 1, 0)
            elif _opens_quote(last, previous, flow, j < node_start):
                quote = c
    return None


_TAG_OR_ANCHOR = re.compile(r"[!&]")


def _opens_quote(last: str, previous: str, flow: int, only_indicators: bool) -> bool:
    """Does a quote start a quoted scalar?  ``last``: the last character before it that is not
    a blank ("" if none); ``previous``: the character just before it; ``only_indicators``:
    nothing but indentation and "- "/"? " indicators before it on its line.

    Only where a node starts; a quote inside a plain scalar ("it's", "a - 'b") is text.  Taking
    a starting quote for text counts brackets inside it: too deep, never too shallow; taking
    text for a starting quote could hide brackets, so the rule is strict."""
    if not last:
        return True
    if flow:
        return last in "[{," or (last in ":?" and previous in " \t")
    if last == ":" and previous in " \t":
        return True  # a value; if the colon was inside a plain scalar, YAML stops there anyway
    return previous in " \t" and only_indicators


class _Composer(CParser, VersionedResolver):
    """libyaml (ruamel.yaml.clib) composing one text, typed as YAML 1.2: what
    ``YAML(typ="safe")`` with ``version = (1, 2)`` composes (the same class underneath, the same
    nodes, tags, marks and errors), without building a ``YAML`` object for every file (it
    looks for plug-ins on disk each time) and with each scalar's type resolved once.

    The C composer asks the resolver for the tag of every node, and ruamel's resolver works out
    its table again for each one: that was half of composing a scheme (issue 12).  The answer
    depends only on the node's kind, text and implicitness (the version is always 1.2: this
    loader, like ruamel's, has no scanner to read a %YAML directive from), so it is kept."""

    _tags: dict = {}
    _TAGS_KEPT = 50_000
    _shared: dict = {}  # one Tag object a tag: it works out its text once, on the first str()

    def __init__(self, text: str):
        CParser.__init__(self, text)
        VersionedResolver.__init__(self, version=(1, 2), loadumper=self)
        self._parser = self._composer = self

    def resolve(self, kind, value, implicit):
        key = (kind, value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            if len(self._tags) >= self._TAGS_KEPT:
                self._tags.clear()
            tag = VersionedResolver.resolve(self, kind, value, implicit)
            tag = self._tags[key] = self._shared.setdefault(str(tag), tag)
        return tag


def _compose(text: str) -> Node | None:
    composer = _Composer(text)
    try:
        return composer.get_single_node()
    finally:
        composer.dispose()


def compose(text: str, ctx: Context) -> Node | None:
    if not _problems_before_parsing(text, ctx):
        return None
    odd = _ODD_BREAKS.search(text) is not None
    try:
        node = _compose(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        # from the character offset: libyaml puts the end of a file that does not end in a
        # line break on a line after the last, which no editor shows
        where = (1, 1) if mark is None else where_in(text, min(mark.index, len(text)))
        ctx.error(where, f"YAML 格式错误：{_yaml_problem(err.problem or err.context or '')}")
        return None
    except YAMLError as err:  # pragma: no cover - the pre-scan refuses what the reader would
        ctx.error((1, 1), f"YAML 格式错误：{_yaml_problem(str(err))}")
        return None
    if node is None:
        ctx.error((1, 1), "文件是空的")
        return None
    if odd:
        _editor_positions(node, text)
    alias = _first_alias(node)
    if alias is not None:
        ctx.error(pos(alias), "规则文件不支持锚点（&）与引用（*），请直接写出内容")
        return None
    return node


def _editor_positions(root: Node, text: str) -> None:
    """Give every node the line and column an editor shows (see ``where_in``)."""
    stack = [root]
    while stack:
        node = stack.pop()
        line, column = where_in(text, node.start_mark.index)
        node.start_mark = _Mark(line - 1, column - 1, node.start_mark.index)
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def _first_alias(root: Node) -> Node | None:
    """A node reached twice is an alias (*name); refusing them also stops "billion laughs"."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return node
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return None


_YAML_PROBLEMS = [
    ("mapping values are not allowed", "这里不能再有“键: 值”；值里有冒号时请给整个值加引号"),
    ("cannot start any token", "含有不能出现在这里的字符（如制表符），缩进请用空格"),
    ("could not find expected ':'", "缺少冒号“:”"),
    ("expected <block end>", "缩进不一致，同一层的键要对齐"),
    ("did not find expected key", "多半是某一行比同一层的其他键多缩进了，请用空格对齐"),
    ("did not find expected '-' indicator", "列表的各项要对齐，每项以“- ”开头"),
    ("found duplicate anchor", "锚点重复"),
    ("found undefined alias", "引用了未定义的锚点"),
    ("while scanning a quoted scalar", "引号没有配对"),
    ("found unexpected end of stream", "引号或括号没有配对"),
    ("expected ',' or ']'", "方括号列表没有正确结束，缺少“,”或“]”"),
    ("expected ',' or '}'", "花括号映射没有正确结束，缺少“,”或“}”"),
]


def _yaml_problem(problem: str) -> str:
    for pattern, words in _YAML_PROBLEMS:
        if pattern in problem:
            return f"{words}（{problem}）"
    return f"请检查缩进、冒号和引号（{problem}）"


# --- value specs ----------------------------------------------------------------


class Spec:
    """How to read one value.  ``words`` names the expected kind in errors and docs."""

    words = "值"

    def read(self, node: Node, ctx: Context) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


def _kind_of(node: Node) -> str:
    return "列表" if isinstance(node, SequenceNode) else "映射"


def _scalar(node: Node, ctx: Context, words: str) -> ScalarNode | None:
    if not isinstance(node, ScalarNode):
        ctx.error(pos(node), f"应为{words}，这里是{_kind_of(node)}")
        return None
    return node


class Text(Spec):
    words = "文字"

    def __init__(self, non_empty: bool = True):
        self.non_empty = non_empty

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        if node.tag != TAG + "str":
            ctx.error(pos(node), f"应为文字，这里是“{_shown(node.value)}”（若确为文字请加引号）")
            return None
        if self.non_empty and not node.value.strip():
            ctx.error(pos(node), "不能为空")
            return None
        return node.value


class Id(Spec):
    """A code such as a clause number: text or a whole number, kept as text.

    ``reference=True`` reads a reference to a rule or veto ("!v1") instead of a new code.
    """

    words = "编号"

    def __init__(self, reference: bool = False):
        self.reference = reference

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        if node.tag not in (TAG + "str", TAG + "int", TAG + "float"):
            ctx.error(pos(node), f"应为编号（文字或数字），这里是“{_shown(node.value)}”")
            return None
        if not node.value.strip():
            ctx.error(pos(node), "编号不能为空")
            return None
        if not self.reference and ("/" in node.value or node.value.startswith(("!", "$"))):
            ctx.error(pos(node), f"编号“{_shown(node.value)}”不能含有“/”，也不能以“!”或“$”开头")
            return None
        return node.value


class Number(Spec):
    words = "数值"

    def __init__(self, positive: bool = False, non_negative: bool = False):
        self.positive, self.non_negative = positive, non_negative

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        if node.tag not in (TAG + "int", TAG + "float"):
            ctx.error(pos(node), f"应为数值，这里是“{_shown(node.value)}”")
            return None
        value, problem = number_problem(node.value)
        if problem is not None or value is None:
            ctx.error(pos(node), problem or "")
            return None
        if self.positive and value <= 0:
            ctx.error(pos(node), f"应为大于0的数值，这里是{_shown(node.value)}")
            return None
        if self.non_negative and value < 0:
            ctx.error(pos(node), f"应为不小于0的数值，这里是{_shown(node.value)}")
            return None
        return value


#: Largest whole number (a rank) read.
MAX_WHOLE = 100_000


class Whole(Spec):
    words = "正整数"

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        text = node.value.replace("_", "")
        if (
            node.tag != TAG + "int"
            or not text.isascii()
            or not text.lstrip("+").isdigit()
            or len(text) > 9
            or not 0 < int(text) <= MAX_WHOLE
        ):
            ctx.error(pos(node), f"应为不超过{MAX_WHOLE}的正整数，这里是“{_shown(node.value)}”")
            return None
        return int(text)


def _shown(text: str) -> str:
    """A value quoted in a message, cut short if long."""
    return text if len(text) <= 40 else text[:40] + "…"


def boolean(node: ScalarNode) -> bool | None:
    """YAML 1.2's booleans exactly: true/false in any of its three spellings (true, True,
    TRUE); None for anything else.  yes/no/on/off are YAML 1.1 words and text in YAML 1.2:
    refused with a message, so that "yes" is never silently read as false."""
    if node.tag != TAG + "bool":
        return None
    return {"true": True, "false": False}.get(node.value.lower())


class Flag(Spec):
    words = "true 或 false"

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        value = boolean(node)
        if value is None:
            ctx.error(pos(node), f"应为 true 或 false，这里是“{_shown(node.value)}”")
            return None
        return value


class OneOf(Spec):
    def __init__(self, *choices: str):
        self.choices = choices
        self.words = "、".join(choices) + " 之一"

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        if node.value not in self.choices:
            hint = difflib.get_close_matches(node.value, self.choices, n=1)
            extra = f"，是否想写“{hint[0]}”？" if hint else ""
            ctx.error(
                pos(node),
                f"“{_shown(node.value)}”不是可用的取值，应为{'、'.join(self.choices)}之一{extra}",
            )
            return None
        return node.value


@dataclass
class ExprText:
    """An expression as written, parsed, with where it stands in the file."""

    text: str
    tree: ex.Expr
    line: int
    column: int  # column of the expression's first character

    def at(self, inner_column: int) -> tuple[int, int]:
        return self.line, self.column + max(inner_column, 1) - 1


class Expression(Spec):
    words = "表达式"

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        line, col = pos(node)
        if node.style in ("'", '"'):
            col += 1
        text = node.value if node.tag == TAG + "str" else node.value
        if node.tag == TAG + "bool":
            text = node.value
        try:
            tree = ex.parse(text)
        except ex.ExprError as err:
            ctx.error((line, col + err.column - 1), err.message)
            return None
        return ExprText(text, tree, line, col)


_INTERVAL = re.compile(
    r"^\s*([\[(])\s*(-inf|[-+]?[0-9]+(?:\.[0-9]+)?)\s*,\s*(inf|[-+]?[0-9]+(?:\.[0-9]+)?)\s*([\])])\s*$"
)


class Range(Spec):
    words = '区间，如 "(3, 5]"'

    def read(self, node, ctx):
        node = _scalar(node, ctx, self.words)
        if node is None:
            return None
        m = _INTERVAL.match(node.value)
        if not m:
            ctx.error(
                pos(node),
                f'区间“{_shown(node.value)}”写法不对，应如 "(3, 5]"、"[94.5, inf)"：'
                "圆括号不含端点，方括号含端点，inf 表示无穷",
            )
            return None
        left, low, high, right = m.groups()
        edges: list[Decimal | None] = []
        for text in (low, high):
            if text in ("-inf", "inf"):
                edges.append(None)
                continue
            value, problem = number_problem(text)
            if problem is not None:
                ctx.error(pos(node), f"区间“{_shown(node.value)}”的端点{problem}")
                return None
            edges.append(value)
        low_v, high_v = edges
        if (low_v is None and left == "[") or (high_v is None and right == "]"):
            ctx.error(pos(node), f"区间“{_shown(node.value)}”中无穷一端只能用圆括号")
            return None
        if (
            low_v is not None
            and high_v is not None
            and (low_v > high_v or (low_v == high_v and not (left == "[" and right == "]")))
        ):
            ctx.error(pos(node), f"区间“{_shown(node.value)}”是空的：下限应小于上限")
            return None
        return Interval(low_v, left == "[", high_v, right == "]", node.value.strip())


class ListOf(Spec):
    def __init__(self, item: Spec, min_items: int = 0):
        self.item, self.min_items = item, min_items
        self.words = f"{item.words}的列表"

    def read(self, node, ctx):
        if isinstance(node, ScalarNode) and isinstance(self.item, Text) and node.tag == TAG + "str":
            out = LocatedList([self.item.read(node, ctx)])  # a single text is a list of one
            out.line, out.column = pos(node)
            out.items_at.append(pos(node))
            return out
        if not isinstance(node, SequenceNode):
            ctx.error(pos(node), "应为列表（每项以“- ”开头）")
            return None
        out = LocatedList()
        out.line, out.column = pos(node)
        for child in node.value:
            out.append(self.item.read(child, ctx))
            out.items_at.append(pos(child))
        if len(out) < self.min_items:
            ctx.error(pos(node), f"至少需要{self.min_items}项")
        return out


@dataclass
class Field:
    spec: Spec
    required: bool = False
    doc: str = ""


class Obj(Spec):
    """A mapping with declared keys; unknown and duplicate keys are errors."""

    def __init__(self, name: str, fields: dict[str, Field], check: Callable | None = None):
        self.name, self.fields, self.check = name, fields, check
        self.words = f"{name}（映射）"

    def read(self, node, ctx):
        if not isinstance(node, MappingNode):
            ctx.error(pos(node), f"应为{self.name}（“键: 值”的映射）")
            return None
        out = Located()
        out.line, out.column = pos(node)
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key is None:
                ctx.error(pos(key_node), "键应为文字")
                continue
            if key in out.keys_at:
                first = out.keys_at[key][0]
                ctx.error(pos(key_node), f"键“{_shown(key)}”重复出现（第{first}行已有）")
                continue
            out.keys_at[key] = pos(key_node)
            out.values_at[key] = pos(value_node)
            out.nodes[key] = value_node
            fieldspec = self.fields.get(key)
            if fieldspec is None:
                hint = difflib.get_close_matches(key, list(self.fields), n=1, cutoff=0.6)
                extra = f"是否想写“{hint[0]}”？" if hint else "可用的键：" + "、".join(self.fields)
                ctx.error(pos(key_node), f"{self.name}中没有键“{_shown(key)}”。{extra}")
                continue
            before = len(ctx.errors)
            out[key] = fieldspec.spec.read(value_node, ctx)
            _name_the_key(ctx, before, pos(value_node), key)
        for key, fieldspec in self.fields.items():
            if fieldspec.required and key not in out.keys_at:
                ctx.error(pos(node), f"{self.name}缺少必填的键“{key}”（{fieldspec.doc}）")
        return out


def _name_the_key(ctx: Context, before: int, where: tuple[int, int], key: str) -> None:
    """Prefix errors about the value itself (not about things nested in it) with its key."""
    for i in range(before, len(ctx.errors)):
        e = ctx.errors[i]
        if (e.line, e.column) == where:
            ctx.errors[i] = RuleFileError(e.file, e.line, e.column, f"{key}：{e.message}")


def _entries(node, ctx: Context, what: str, item: str):
    """A mapping with free keys: a ``Located`` to fill, and (key, value node) pairs, duplicates refused."""
    if not isinstance(node, MappingNode):
        ctx.error(pos(node), f"应为“{what}”的映射")
        return None, []
    out = Located()
    out.line, out.column = pos(node)
    pairs = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            ctx.error(pos(key_node), f"{item}应写成单个名称（文字），这里是{_kind_of(key_node)}")
            continue
        key = key_node.value
        if key in out.keys_at:
            ctx.error(
                pos(key_node), f"{item}“{_shown(key)}”重复出现（第{out.keys_at[key][0]}行已有）"
            )
            continue
        out.keys_at[key] = pos(key_node)
        out.values_at[key] = pos(value_node)
        pairs.append((key, value_node))
    return out, pairs


class FactValues(Spec):
    """A test case's facts: fact name -> value, kept as plain Python values."""

    words = "事实名到取值的映射"

    def read(self, node, ctx):
        out, pairs = _entries(node, ctx, "事实名: 值", "键")
        for key, value_node in pairs:
            if not isinstance(value_node, ScalarNode):
                ctx.error(
                    pos(value_node), f"事实“{_shown(key)}”的值应为单个数值、文字或 true/false"
                )
                continue
            tag, text = value_node.tag, value_node.value
            if tag == TAG + "bool":
                flag = boolean(value_node)
                if flag is None:
                    ctx.error(
                        pos(value_node),
                        f"事实“{_shown(key)}”的值应为 true 或 false，这里是“{_shown(text)}”",
                    )
                    continue
                out[key] = flag
            elif tag in (TAG + "int", TAG + "float"):
                value, problem = number_problem(text)
                if problem is not None:
                    ctx.error(pos(value_node), f"事实“{_shown(key)}”的值{problem}")
                    continue
                out[key] = value
            elif tag == TAG + "null":
                out[key] = None
            else:
                out[key] = text
        return out


class BandExpectations(Spec):
    """rule id -> the band or level (its label or its range) a test expects to fire."""

    words = "规则编号到档的映射"

    def read(self, node, ctx):
        out, pairs = _entries(node, ctx, "规则编号: 档的名称或区间", "规则")
        for key, value_node in pairs:
            if not isinstance(value_node, ScalarNode):
                ctx.error(pos(value_node), '档应写成名称或区间文字，如 "70%以上" 或 "[70, 100)"')
                continue
            out[key] = value_node.value
        return out


class Units(Spec):
    """unit name -> object, for ranking test cases."""

    words = "单位名到内容的映射"

    def __init__(self, item: Obj):
        self.item = item

    def read(self, node, ctx):
        out, pairs = _entries(node, ctx, "单位名: 内容", "单位")
        for key, value_node in pairs:
            out[key] = self.item.read(value_node, ctx)
        return out
