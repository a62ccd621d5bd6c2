"""Excel workbooks laid out the way the offices publish their tables.

One sheet 排名 (序号, 单位, 总分, each top-level category's subtotal, 名次, 等级, 说明, 状态) and one
sheet per unit (序号, 考核项目, 分值, 自评, 评审, 差异, 说明): category rows with their subtotals,
then each clause with the points of the unit's own self-assessment beside the official points and
the explanation of the trace, then 合计.  Points are numeric cells with exact decimals, shown to 2
places.  Every sheet names the round, the rules version and the unit's state, and prints with page
numbers, the print date and the sign-off line (审核人/日期) in its footer.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter

from .present import CST, KIND_WORDS, humanize, trace_outline

FONT = "等线"  # the Office default for Chinese; falls back gracefully elsewhere
THIN = Side(style="thin", color="999999")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD_FILL = PatternFill("solid", fgColor="DCE6F1")
CAT_FILL = PatternFill("solid", fgColor="F2F2F2")
WRAP = Alignment(wrap_text=True, vertical="top")
CENTRE = Alignment(horizontal="center", vertical="top", wrap_text=True)
POINTS = "0.00"
NUMERALS = "一二三四五六七八九十"

UNIT_HEADER = ("序号", "考核项目", "分值", "得分", "说明")
UNIT_WIDTHS = (7, 42, 8, 8, 80)
#: a unit sheet of an official score: its own self-assessment (自评) beside the review (评审)
COMPARED_HEADER = ("序号", "考核项目", "分值", "自评", "评审", "差异", "说明")
COMPARED_WIDTHS = (7, 42, 8, 8, 8, 8, 66)
EVIDENCE_HEADER = ("序号", "事实", "文件名", "SHA-256", "大小（字节）")
EVIDENCE_WIDTHS = (7, 30, 40, 70, 14)
#: the 事实来源 sheet of a unit's workbook: each fact of the score with its provenance
SOURCES_HEADER = ("序号", "事实", "值", "读取的条款", "来自", "身份", "申诉", "录入/修改人", "时间",
                  "理由", "佐证材料")  # fmt: skip
SOURCES_WIDTHS = (6, 30, 10, 12, 9, 9, 16, 12, 16, 36, 30)
RANK_HEADER = ("序号", "单位", "总分", "名次", "等级", "说明", "状态")
RANK_WIDTHS = (7, 20, 10, 7, 12, 72, 12)
#: what the person who checks a printed table signs (every sheet's footer, and the last row)
SIGN_OFF = "审核人：________ 日期：________"


# what a spreadsheet program may take for the start of a formula (OWASP's list, with the newline
# XML turns a carriage return into): such text is written as a string cell marked as text
# (quotePrefix), so it shows as typed and stays text when someone edits the cell
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _put(ws, row: int, column: int, value, style: str | None = None):
    """A cell with ``value``; text is always text, never a formula (a unit named "=HYPERLINK(…)")."""
    cell = ws.cell(row=row, column=column, value=value)
    if style is not None:
        cell.style = style  # first: a named style resets the cell's quotePrefix
    if isinstance(value, str):
        cell.data_type = "s"  # openpyxl makes every string starting with "=" a formula
        if value.startswith(FORMULA_START):
            cell.quotePrefix = True
    return cell


def attachment(filename: str) -> str:
    """``Content-Disposition`` of a download (RFC 6266): an ASCII fallback any client reads safely,
    and the real name in UTF-8 (RFC 5987). Nothing of the name can end the header (CR, LF) or the
    quoted fallback (a quote, a backslash): a unit's name is typed by people."""
    name = "".join(ch for ch in filename if ch.isprintable())
    stem, dot, ext = name.rpartition(".")
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", stem if dot else name).strip("._") or "download"
    fallback += f".{re.sub(r'[^A-Za-z0-9]+', '', ext)}" if dot and ext.isascii() else ""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _num(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _styles(wb) -> None:
    """Named styles, registered once per workbook (cheap to apply to many cells)."""

    def named(name, bold=False, fill=None, align=WRAP, number=None):
        style = NamedStyle(
            name=name, font=Font(name=FONT, bold=bold), border=BORDER, alignment=align
        )
        if fill is not None:
            style.fill = fill
        if number:
            style.number_format = number
        wb.add_named_style(style)

    for kind, bold, fill in (
        ("body", False, None),
        ("cat", True, CAT_FILL),
        ("sum", True, HEAD_FILL),
    ):
        named(kind, bold, fill)
        named(f"{kind}-c", bold, fill, CENTRE)
        named(f"{kind}-p", bold, fill, CENTRE, POINTS)
    named("head", True, HEAD_FILL, CENTRE)


def _title(ws, row: int, text: str, columns: int, size: int = 14) -> None:
    cell = _put(ws, row, 1, text)
    cell.font = Font(name=FONT, size=size, bold=size > 11)
    cell.alignment = Alignment(horizontal="center" if size > 11 else "left", wrap_text=True)
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=columns)


def _header(ws, row: int, names, widths) -> None:
    for i, (name, width) in enumerate(zip(names, widths), start=1):
        _put(ws, row, i, name, "head")
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = ws.cell(row=row + 1, column=1)
    ws.print_title_rows = f"{row}:{row}"


def _row(ws, row: int, values, kind: str = "body", points_cols=()) -> None:
    for i, value in enumerate(values, start=1):
        if i in points_cols:
            style = f"{kind}-p" if isinstance(value, Decimal) else f"{kind}-c"
        else:
            style = f"{kind}-c" if i == 1 else kind
        _put(ws, row, i, value, style)


def _header_text(text: str, limit: int = 80) -> str:
    """Text for a print header or footer: "&" starts a code there (&P, &D), so a unit's or round's
    own "&" is doubled; Excel refuses a header of more than 255 characters, so it is cut short."""
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("&", "&&")


def _page(ws, landscape: bool = False, heading: str = "") -> None:
    """A4, one page wide; the header names what is printed (``heading``: the round and rules
    version, made safe by ``_header_text``), the footer the print date (&D: the day it is printed), the page number of the pages
    (&P / &N) and the sign-off line, on every page."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.header = ws.page_margins.footer = 0.3
    if heading:
        ws.oddHeader.center.text = heading
    ws.oddFooter.left.text = "打印日期：&D"
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.oddFooter.right.text = SIGN_OFF


def _sign_off(ws, row: int, columns: int) -> None:
    """The sign-off line below a table (row ``row``, after one empty row)."""
    _title(ws, row + 1, SIGN_OFF, columns, size=11)


def sheet_name(name: str, taken: set) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name).strip("'") or "单位"
    base = base[:31]
    out, n = base, 2
    while out in taken:
        suffix = f"({n})"
        out, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(out)
    return out


def _diff(reviewed, own):
    """评审 − 自评, or nothing when either is not there."""
    return None if reviewed is None or own is None else reviewed - own


def _unit_info(trace: Mapping, meta: Mapping, own, compared: bool) -> str:
    """The line under a unit sheet's title: total, grade, round, state, versions."""
    u = trace.get("point_unit", "分")
    source = meta if (meta.get("grade") or meta.get("grade_pending")) else trace
    info = (
        f"总分 {Decimal(trace['total']):.2f}{u}（基本分满分 {Decimal(trace['maximum']):.2f}{u}）"
        f"　等级：{grade_words(source)}"
    )
    if "round" in meta:
        info += f"　考核轮次 {round_words(meta.get('round'))}"
    if meta.get("state_words"):
        info += f"　状态：{meta['state_words']}"
    info += (
        f"　规则版本 {trace['version'][:12]}　提交版本 第{meta.get('submission_version', '—')}版"
    )
    if compared:
        info += (
            f"（评审）；自评 第{own.version}版提交，按同一规则版本计算，未保存为得分"
            if own is not None
            else "（评审）；没有可计算的自评版本"
        )
    if meta.get("kind_words") == "预览":
        info += "　预览：本单位试算结果，不计入排名，不是正式得分"
    return info


def _category_label(cat: Mapping, depth: int, continued: bool, top_n: int) -> str:
    if continued:
        return f"（{cat['title']}，续）"
    if depth == 0:
        label = f"{NUMERALS[top_n] if top_n < len(NUMERALS) else top_n + 1}、{cat['title']}"
        if cat["kind"] != "standard" and KIND_WORDS[cat["kind"]] not in cat["title"]:
            label += f"（{KIND_WORDS[cat['kind']]}）"
        return label
    return f"{cat['id']} {cat['title']}" if cat["id"] not in cat["title"] else cat["title"]


def unit_sheet(
    ws,
    scheme_title: str,
    unit: str,
    trace: dict,
    meta: Mapping,
    facts: Mapping = None,
    compared: bool = False,
    own=None,
) -> None:
    """序号, 考核项目, 分值, 得分, 说明 (or, ``compared``, 分值, 自评, 评审, 差异, 说明): the clauses
    under their categories, then 合计, 等级 and the sign-off line.
    ``meta["kind_words"]``: 正式得分 or 预览, said in the title (a preview is never mistaken for the
    office's result); ``meta["round"]``, ``meta["state_words"]``: the round and the unit's state.
    ``compared``: an official score, shown as 评审 beside the unit's own self-assessment (自评,
    ``own``: ``service.selfassessment.SelfAssessed``, None when there is none) and their 差异."""
    kind = meta.get("kind_words")
    header, widths = (COMPARED_HEADER, COMPARED_WIDTHS) if compared else (UNIT_HEADER, UNIT_WIDTHS)
    width = len(header)
    points_cols = (3, 4, 5, 6) if compared else (3, 4)
    _title(ws, 1, f"{unit} · {scheme_title} 考核评分表" + (f"（{kind}）" if kind else ""), width)
    _title(ws, 2, _unit_info(trace, meta, own, compared), width, size=10)
    _header(ws, 4, header, widths)
    own_clauses = own.clauses if own is not None else {}
    own_categories = own.categories if own is not None else {}

    def cells(number, label, maximum, points, own_points, words):
        if not compared:
            return (number, label, maximum, points, words)
        return (number, label, maximum, own_points, points, _diff(points, own_points), words)

    by_id = {c["id"]: c for c in trace["clauses"]}
    row, n, top_n = 5, 0, 0
    for cat, depth, ids, continued in trace_outline(trace):
        label = _category_label(cat, depth, continued, top_n)
        top_n += depth == 0 and not continued
        if continued:
            values = cells("", label, None, None, None, "")
        else:
            maximum = (
                _num(cat["maximum"]) if cat.get("maximum") is not None else _num(cat.get("cap"))
            )
            values = cells("", label, maximum, _num(cat["points"]), own_categories.get(cat["id"]),
                           humanize(cat["explanation"], facts or {}))  # fmt: skip
        _row(ws, row, values, "cat", points_cols=points_cols)
        row += 1
        for cid in ids:
            c = by_id[cid]
            n += 1
            maximum = -_num(c["maximum"]) if c["kind"] == "deduction" else _num(c["maximum"])
            values = cells(n, f"{c['id']} {c['title']}", maximum, _num(c["points"]),
                           own_clauses.get(cid), humanize(c["explanation"], facts or {}))  # fmt: skip
            _row(ws, row, values, points_cols=points_cols)
            row += 1
    u = trace.get("point_unit", "分")
    words = (
        f"基本分 {Decimal(trace['standard']):.2f}{u}，加分 {Decimal(trace['bonus']):.2f}{u}，"
        f"扣分 {Decimal(trace['deduction']):.2f}{u}"
        + ("" if trace["complete"] else "；缺少事实，结果不完整")
    )
    total = _num(trace["total"])
    own_total = own.total if own is not None else None
    _row(ws, row, cells("", "合计", _num(trace["maximum"]), total, own_total, words), "sum",
         points_cols=points_cols)  # fmt: skip
    row += 1
    if trace.get("grade_explanation") or meta.get("explanation"):
        words = meta.get("explanation") or trace["grade_explanation"]
        _row(ws, row, cells("", "等级", None, None, None, words), points_cols=points_cols)
        row += 1
    _sign_off(ws, row, width)
    _page(ws, heading=_heading(scheme_title, meta.get("round"), trace["version"], unit))


def _heading(scheme_title: str, round_info, version: str, unit: str = "") -> str:
    """The print header of a sheet: what it is of (the unit, the round or else the scheme, the
    rules version); a long name is cut short, the version never."""
    what = round_words(round_info) if round_info else scheme_title
    return "　".join(
        _header_text(p, limit)
        for p, limit in ((unit, 30), (what, 70), (f"规则版本 {version[:12]}", 40))
        if p
    )


def grade_words(entry: Mapping) -> str:
    """The grade as every output writes it (the ranking sheet, the unit sheets, and through the
    ``grade_words`` filter the ranking and score pages): 待定 when a grade veto waits on a missing
    fact, and a distinction within reach but undecided marked 待定, never shown as awarded.
    ``entry``: a ranking entry or a stored trace (both carry grade, grade_pending, distinctions
    and pending_distinctions)."""
    grade = "待定" if entry.get("grade_pending") else (entry.get("grade") or "—")
    if entry.get("distinctions"):
        grade += "（" + "、".join(entry["distinctions"]) + "）"
    if entry.get("pending_distinctions"):
        grade += "（" + "、".join(entry["pending_distinctions"]) + "待定）"
    return grade


def _relative_parts(entry: Mapping) -> list:
    """The parts computed in ranking of one entry, the conversion last (empty for most schemes)."""
    parts = list(entry.get("relative") or [])
    if entry.get("converted"):
        parts.append(entry["converted"])
    return parts


def _relative_header(entries: list) -> tuple:
    """The columns a scheme with parts computed in ranking adds after 说明 (rules/README.md 6.19):
    the total scored alone, each part's points, and their sentences."""
    first = next((e for e in entries if _relative_parts(e)), None)
    if first is None:
        return ()
    return ("单独计分总分", *(p["title"] for p in _relative_parts(first)), "排名计分说明")


def _relative_cells(entry: Mapping) -> tuple:
    parts = _relative_parts(entry)
    points = tuple("不计分" if p["points"] is None else _num(p["points"]) for p in parts)
    words = "；".join(f"{p['title']}：{p['explanation']}" for p in parts)
    return (_num(entry.get("scored_total")), *points, words)


def round_words(round_info: Mapping | None) -> str:
    """The round a ranking is of, as its heading says it: title, year and stage."""
    if not round_info:
        return "（没有考核轮次）"
    return f"{round_info['title']}（{round_info['year']}年度 · {round_info['stage_words']}）"


def unranked_words(row: Mapping) -> str:
    """Why a unit of the round has no place in the ranking (it is listed, never left out)."""
    return f"{row['shown']}：尚无正式得分，不参与排名（当前状态：{row['state_words']}）"


def top_categories(traces: Mapping) -> list:
    """(id, column title) of the top-level categories of the ranked units' traces, in the scheme's
    order (every trace of a round is under the round's rules version: one list)."""
    seen: dict = {}
    for trace in traces.values():
        for cat in trace.get("categories", ()):
            if cat.get("parent") is None and cat["id"] not in seen:
                title = cat["title"]
                if cat["kind"] != "standard" and KIND_WORDS[cat["kind"]] not in title:
                    title += f"（{KIND_WORDS[cat['kind']]}）"
                seen[cat["id"]] = title
    return list(seen.items())


def _subtotals(trace: Mapping | None, categories: list) -> tuple:
    points = {c["id"]: c["points"] for c in (trace or {}).get("categories", ())}
    return tuple(_num(points.get(cid)) for cid, _title in categories)


def ranking_sheet(
    ws,
    scheme_title: str,
    version: str,
    entries: list,
    round_info: Mapping | None = None,
    unranked: list = (),
    traces: Mapping | None = None,
) -> None:
    """The ranking of a round's official scores; after the ranked units, every other unit of the
    round as 未填报 / 待评审 with its state.  ``traces`` (unit code -> the stored trace ranked): each
    top-level category's subtotal in its own column after 总分.  A scheme with parts computed in
    ranking adds their columns after 状态."""
    categories = top_categories(traces or {})
    cats = len(categories)
    extra = _relative_header(entries)
    header = RANK_HEADER[:3] + tuple(t for _id, t in categories) + RANK_HEADER[3:] + extra
    widths = (
        RANK_WIDTHS[:3]
        + (10,) * cats
        + RANK_WIDTHS[3:]
        + (10,) * (len(extra) - 1)
        + (80,) * bool(extra)
    )
    _title(ws, 1, f"{scheme_title} 考核结果排名", len(header))
    made = datetime.now(CST).strftime("%Y-%m-%d %H:%M")
    _title(
        ws,
        2,
        f"考核轮次 {round_words(round_info)}　规则版本 {version[:12]}　导出时间 {made}（北京时间）",
        len(header),
        size=10,
    )
    _header(ws, 4, header, widths)
    # 总分, the subtotals, 名次; then the relative parts after 状态
    points_cols = tuple(range(3, 6 + cats)) + tuple(range(len(RANK_HEADER) + cats + 1, len(header)))
    for i, e in enumerate(entries, start=1):
        words = e.get("explanation", "")
        if not e.get("complete", True):
            words += "；缺少事实，结果不完整"
        cells = (
            (i, e["unit"], _num(e["total"]))
            + _subtotals((traces or {}).get(e.get("unit_code")), categories)
            + (e["rank"], grade_words(e), words, e.get("state_words", ""))
        )
        _row(ws, 4 + i, cells + (_relative_cells(e) if extra else ()), points_cols=points_cols)
    for i, row in enumerate(unranked, start=len(entries) + 1):
        cells = (
            (i, row["unit"], None)
            + (None,) * cats
            + (None, row["shown"], unranked_words(row), row["state_words"])
        )
        _row(ws, 4 + i, cells, points_cols=tuple(range(3, 6 + cats)))
    _sign_off(ws, 5 + len(entries) + len(unranked), len(header))
    _page(ws, landscape=True, heading=_heading(scheme_title, round_info, version))


def ranking_workbook(
    scheme_title: str,
    version: str,
    entries: list,
    traces: Mapping,
    facts: Mapping = None,
    round_info: Mapping | None = None,
    unranked: list = (),
    own: Mapping | None = None,
) -> bytes:
    """``traces``: unit code -> stored trace of the score the ranking used; ``round_info`` and
    ``unranked``: the ranking's round and the units without an official score in it; ``own``: unit
    code -> the points of its self-assessment (``service.selfassessment.self_assessed``), set as 自评
    beside the official points in its sheet."""
    wb = Workbook()
    _styles(wb)
    ws = wb.active
    ws.title = "排名"
    ranking_sheet(ws, scheme_title, version, entries, round_info, unranked, traces)
    taken = {"排名"}
    for e in entries:
        unit_sheet(
            wb.create_sheet(sheet_name(e["unit"], taken)),
            scheme_title,
            e["unit"],
            traces[e["unit_code"]],
            {**e, "kind_words": "正式得分", "round": round_info},
            facts,
            compared=True,
            own=(own or {}).get(e["unit_code"]),
        )
    return _save(wb)


def evidence_sheet(ws, unit: str, files: Mapping, facts: Mapping = None) -> None:
    """The files attached to the scored submission, per fact: name and SHA-256 (what identifies
    the very bytes the score relied on), and size."""
    _title(ws, 1, f"{unit} · 佐证材料（上传的文件）", len(EVIDENCE_HEADER))
    _header(ws, 3, EVIDENCE_HEADER, EVIDENCE_WIDTHS)
    row = 4
    for name, rows in files.items():
        spec = (facts or {}).get(name)
        for f in rows:
            label = f"{spec.label}（{name}）" if spec is not None else name
            _row(ws, row, (row - 3, label, f.name, f.sha256, f.size))
            row += 1
    _sign_off(ws, row, len(EVIDENCE_HEADER))
    _page(ws, landscape=True, heading=_header_text(f"{unit} · 佐证材料"))


def sources_sheet(
    ws, unit: str, sources: Mapping, facts: Mapping = None, heading: str = ""
) -> None:
    """Where each fact of a score came from (``service.provenance.of_score``, what the score page
    shows beside each clause), one row a fact: the clauses that read it first in the scheme's order,
    then any other fact of the score; its value, the version where it last changed, as what
    (自评 / 评审 / 申诉更正, and the appeal), who, when, why and the evidence named there."""
    _title(ws, 1, f"{unit} · 事实来源（每项事实的值及其录入、修改记录）", len(SOURCES_HEADER))
    _header(ws, 3, SOURCES_HEADER, SOURCES_WIDTHS)
    read_by: dict = {}
    for clause, names in sources["clauses"].items():
        for name in names:
            read_by.setdefault(name, []).append(clause)
    order = [n for n in read_by if n in sources["facts"]]
    order += sorted(n for n in sources["facts"] if n not in read_by)
    row = 4
    for n, name in enumerate(order, 1):
        p, spec = sources["facts"][name], (facts or {}).get(name)
        appeal = f"申诉 #{p['appeal']} 第{p['appeal_clause']}条的更正" if p.get("appeal") else ""
        _row(ws, row, (n, f"{spec.label}（{name}）" if spec is not None else name,
                       _text_value(p["value"]) if p["present"] else "缺失",
                       "、".join(read_by.get(name, ())),
                       f"第{p['version']}版" if p["version"] else "从未填报",
                       p["role_words"] or "", appeal, p["by"] or "", _when(p["at"]),
                       p["reason"], "；".join(p["evidence"])))  # fmt: skip
        row += 1
    _sign_off(ws, row, len(SOURCES_HEADER))
    _page(ws, landscape=True, heading=heading or _header_text(f"{unit} · 事实来源"))


def unit_workbook(
    scheme_title: str,
    unit: str,
    trace: dict,
    meta: Mapping,
    facts: Mapping = None,
    files: Mapping | None = None,
    compared: bool = False,
    own=None,
    sources: Mapping | None = None,
) -> bytes:
    """``files``: fact name -> the evidence files the scored submission references (a sheet of
    their names and hashes follows the score, when there are any); ``compared``, ``own``: an
    official score beside the unit's self-assessment (``unit_sheet``); ``sources``: the score's
    provenance (``service.provenance.of_score``), a sheet 事实来源 after the score."""
    wb = Workbook()
    _styles(wb)
    ws = wb.active
    taken: set = set()
    ws.title = sheet_name(unit, taken)
    unit_sheet(ws, scheme_title, unit, trace, meta, facts, compared, own)
    heading = _heading(scheme_title, meta.get("round"), trace["version"], unit)
    if sources is not None:
        sheet = wb.create_sheet(sheet_name("事实来源", taken))
        sources_sheet(sheet, unit, sources, facts, heading)
    if files and any(files.values()):
        evidence_sheet(wb.create_sheet(sheet_name("佐证材料", taken)), unit, files, facts)
    return _save(wb)


def _save(wb) -> bytes:
    wb.properties.creator = "评分引擎"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- the auditor's workbooks (issue 11) ---------------------------------------------------------

AUDIT_UNITS_HEADER = ("序号", "单位", "状态", "计分记录", "总分", "等级", "规则版本", "依据提交",
                      "计算引擎", "计算人", "计算时间", "复核结果")  # fmt: skip
AUDIT_UNITS_WIDTHS = (6, 16, 9, 9, 9, 8, 20, 8, 14, 10, 16, 40)
AUDIT_FACTS_HEADER = ("单位", "条款", "事实", "值", "来自", "身份", "录入/修改人", "时间", "理由",
                      "佐证材料")  # fmt: skip
AUDIT_FACTS_WIDTHS = (14, 10, 28, 12, 8, 10, 12, 16, 36, 30)
AUDIT_MARKS_HEADER = ("单位", "条款", "评审人", "分数", "理由", "时间")
AUDIT_MARKS_WIDTHS = (16, 12, 14, 8, 50, 16)
AUDIT_APPEALS_HEADER = ("单位", "申诉", "条款", "申诉人", "申诉时间", "申诉理由", "答复", "答复理由",
                        "答复人", "答复时间", "新版本", "新计分记录")  # fmt: skip
AUDIT_APPEALS_WIDTHS = (14, 7, 10, 10, 16, 30, 7, 30, 10, 16, 7, 9)
REPLAY_HEADER = (
    "序号",
    "单位",
    "计分记录",
    "保存的总分",
    "复核的总分",
    "结果",
    "不同的条款",
    "原因",
)
REPLAY_WIDTHS = (6, 16, 9, 11, 11, 9, 50, 30)


def _when(value) -> str:
    from .present import when

    return when(value) if value else ""


def _text_value(value) -> object:
    """A fact's value as a cell: an exact number where it is one, else its text."""
    if isinstance(value, bool) or value is None:
        return {True: "是", False: "否", None: "缺失"}[value]
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value) if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value) else value
        except ArithmeticError:  # pragma: no cover - the pattern is a decimal
            return value
    return str(value)


def _replay_words(replay: Mapping | None) -> str:
    if not replay:
        return ""
    return replay.get("words") or ("已复现" if replay.get("reproduced") else "未复现")


def _audit_sheet(ws, title: str, heading: str, header, widths, rows, points_cols=()) -> None:
    _title(ws, 1, title, len(header))
    _header(ws, 3, header, widths)
    row = 4
    for values in rows:
        _row(ws, row, values, points_cols=points_cols)
        row += 1
    _sign_off(ws, row, len(header))
    _page(ws, landscape=True, heading=heading)


def audit_workbook(data: Mapping) -> bytes:
    """The audit of a round (``service.audit.round_audit``), laid out for printing and signing:
    汇总 (every unit's official score, rules version, submission version, engine, who computed it,
    the replay), 事实来源 (each fact a clause read: value, version, as what, who, when, why,
    evidence), 评审组打分 (each reviewer's points), 申诉 (appeals and their answers)."""
    rnd = data["round"]
    heading = _header_text(
        f"{rnd['title']} · 审计工作簿　规则版本 {rnd['rules_version'][:12]}", 120
    )
    wb = Workbook()
    _styles(wb)
    summary = wb.active
    summary.title = "汇总"
    rows = []
    for n, u in enumerate(data["units"], 1):
        sc = u.get("score")
        rows.append(
            (n, u["unit_name"], u["state_words"], sc["id"] if sc else None,
             _num(sc["total"]) if sc else None, (sc or {}).get("grade") or "",
             sc["rules_version"] if sc else "", f"第{sc['submission_version']}版" if sc else "",
             sc["engine_version"] if sc else "", sc["computed_by"] if sc else "",
             _when(sc["computed_at"]) if sc else "",
             _replay_words(u.get("replay")) if sc else "没有正式得分")
        )  # fmt: skip
    _audit_sheet(summary, f"{rnd['title']} · 审计汇总（{rnd['stage_words']}）", heading,
                 AUDIT_UNITS_HEADER, AUDIT_UNITS_WIDTHS, rows, points_cols=(5,))  # fmt: skip
    facts = []
    for u in data["units"]:
        prov = u.get("provenance")
        if not prov:
            continue
        for clause, names in prov["clauses"].items():
            for name in names:
                p = prov["facts"].get(name)
                if p is None:
                    continue
                facts.append(
                    (u["unit_name"], clause, name, _text_value(p["value"]) if p["present"] else "缺失",
                     f"第{p['version']}版" if p["version"] else "从未填报", p["role_words"] or "",
                     p["by"] or "", _when(p["at"]), p["reason"], "；".join(p["evidence"]))
                )  # fmt: skip
    _audit_sheet(wb.create_sheet("事实来源"), f"{rnd['title']} · 各条款读取的事实及其来源", heading,
                 AUDIT_FACTS_HEADER, AUDIT_FACTS_WIDTHS, facts)  # fmt: skip
    marks = [
        (u["unit_name"], m["clause"], m["reviewer"], _num(m["points"]), m["reason"],
         _when(m["entered_at"]))
        for u in data["units"] for m in u["marks"]
    ]  # fmt: skip
    _audit_sheet(wb.create_sheet("评审组打分"), f"{rnd['title']} · 评审组各成员的打分", heading,
                 AUDIT_MARKS_HEADER, AUDIT_MARKS_WIDTHS, marks, points_cols=(4,))  # fmt: skip
    appeals = [
        (u["unit_name"], a["appeal"], a["clause"], a["filed_by"], _when(a["filed_at"]), a["reason"],
         a["answer_words"], a["answer_reason"] or "", a["answered_by"] or "",
         _when(a["answered_at"]), a["new_submission_version"], a["new_score_id"])
        for u in data["units"] for a in u["appeals"]
    ]  # fmt: skip
    _audit_sheet(wb.create_sheet("申诉"), f"{rnd['title']} · 申诉及答复", heading,
                 AUDIT_APPEALS_HEADER, AUDIT_APPEALS_WIDTHS, appeals)  # fmt: skip
    replays = []
    for n, u in enumerate((u for u in data["units"] if u.get("score")), 1):
        r = u.get("replay") or {}
        replays.append(_replay_row(n, u["unit_name"], u["score"]["id"], r))
    _audit_sheet(wb.create_sheet("复核"), f"{rnd['title']} · 正式得分复核", heading,
                 REPLAY_HEADER, REPLAY_WIDTHS, replays, points_cols=(4, 5))  # fmt: skip
    return _save(wb)


def _replay_row(n: int, unit: str, score_id, r: Mapping) -> tuple:
    clauses = "；".join(
        f"{c['clause']}：{c.get('stored_points')} → {c.get('replayed_points')}"
        for c in r.get("clauses") or []
    )
    causes = "、".join(w for c in r.get("clauses") or [] for w in c.get("causes_words") or []) or (
        "" if r.get("reproduced") else "、".join(r.get("causes") or [])
    )
    return (n, unit, score_id, _num(r.get("stored_total")), _num(r.get("replayed_total")),
            "已复现" if r.get("reproduced") else "未复现", clauses, causes)  # fmt: skip


def replay_workbook(report: Mapping) -> bytes:
    """A replay job's report (``service.audit.replay_report``): one row per official score."""
    rnd = report.get("round") or {}
    title = f"{rnd.get('title', '')} · 复核报告（任务 {report['job']}）"
    heading = _header_text(f"{title}　规则版本 {rnd.get('rules_version', '')[:12]}", 120)
    wb = Workbook()
    _styles(wb)
    ws = wb.active
    ws.title = "复核"
    rows = [
        _replay_row(n, s["unit_name"], s["score"], s) for n, s in enumerate(report["scores"], 1)
    ]
    rows += [
        ("", f["unit_name"], f["score"], None, None, "出错", f["message"], "")
        for f in report["failures"]
    ]
    _audit_sheet(ws, title, heading, REPLAY_HEADER, REPLAY_WIDTHS, rows, points_cols=(4, 5))
    return _save(wb)


JOURNAL_HEADER = ("编号", "时间（北京时间）", "操作人", "角色", "动作", "对象", "单位", "细则", "结果",
                  "详情")  # fmt: skip
JOURNAL_WIDTHS = (10, 18, 14, 10, 22, 40, 12, 18, 8, 60)


def journal_workbook(entries, filters_words: str, limit: int) -> bytes:
    """The journal entries ``entries`` yields (newest first; a None: there were more than ``limit``),
    written as they come (a write-only sheet: memory stays flat however many rows)."""
    import json

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("操作日志")
    for i, width in enumerate(JOURNAL_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.page_setup.paperSize = "9"  # A4
    ws.page_setup.orientation = "landscape"
    ws.oddFooter.left.text = "打印日期：&D"
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.oddFooter.right.text = SIGN_OFF
    ws.append([f"操作日志导出　筛选：{filters_words}"])
    ws.append(list(JOURNAL_HEADER))
    count, more = 0, False
    for e in entries:
        if e is None:
            more = True
            break
        detail = json.dumps(e.detail or {}, ensure_ascii=False, default=str) if e.detail else ""
        row = [e.id, _when(e.at), e.actor, e.role, e.action, e.target, e.unit or "",
               e.scheme or "", e.outcome, detail]  # fmt: skip
        ws.append([_text_cell(ws, v) for v in row])
        count += 1
    ws.append([])
    ws.append(
        [
            f"共 {count} 条"
            + (f"（超过导出上限 {limit} 条，其余未导出：请缩小筛选范围）" if more else "")
        ]
    )
    ws.append([SIGN_OFF])
    return _save(wb)


def _text_cell(ws, value):
    """A value of a write-only sheet; text always text, never a formula (as ``_put`` writes it)."""
    if not isinstance(value, str):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    if value.startswith(FORMULA_START):
        cell.quotePrefix = True
    return cell
