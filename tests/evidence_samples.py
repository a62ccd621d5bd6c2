"""Small real files of every kind the evidence upload takes, and some that it must refuse, made
here from their formats (no binary fixtures): the API and the admin-page tests both use them."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from openpyxl import Workbook


def pdf(text: str = "佐证") -> bytes:
    body = f"BT /F1 12 Tf 72 712 Td ({text.encode('utf-8').hex()}) Tj ET".encode()
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj\n"
        + f"4 0 obj << /Length {len(body)} >> stream\n".encode()
        + body
        + b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    # SOI, a JFIF APP0 segment, EOI: the markers a reader of the type goes by
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


_TYPES = {
    "docx": ("word/document.xml", "wordprocessingml.document.main+xml"),
    "pptx": ("ppt/presentation.xml", "presentationml.presentation.main+xml"),
}


def ooxml(kind: str, declared: str | None = None) -> bytes:
    """A docx or pptx package: [Content_Types].xml declaring its main part, and that part."""
    part, main = _TYPES[kind]
    declared = declared or main
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/{part}" '
            f'ContentType="application/vnd.openxmlformats-officedocument.{declared}"/>'
            "</Types>",
        )
        z.writestr(part, "<document/>")
    return out.getvalue()


def xlsx() -> bytes:
    book = Workbook()
    book.active["A1"] = "佐证"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<document/>")  # looks like Word, declares nothing
    return out.getvalue()


def ole(stream_name: str = "WordDocument") -> bytes:
    """A compound file (OLE2, CFB version 3) with one 4 KiB stream: how Word 97-2003 (stream
    ``WordDocument``) and Excel 97-2003 (``Workbook``) store their documents, and an .msi
    installer too (other streams)."""
    end, free, fat_sector, no_stream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    header = bytearray(512)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, 4096, end, 0, end, 0)
    struct.pack_into("<I", header, 76, 0)  # the FAT is sector 0
    for i in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * i, free)
    fat = [fat_sector, end] + [3, 4, 5, 6, 7, 8, 9, end] + [free] * 118
    fat_bytes = struct.pack("<128I", *fat)

    def entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
        raw = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        raw[0 : len(encoded)] = encoded
        struct.pack_into("<HBB", raw, 64, len(encoded), kind, 1 if name else 0)
        struct.pack_into("<III", raw, 68, no_stream, no_stream, child)
        struct.pack_into("<IQ", raw, 116, start, size)
        return bytes(raw)

    directory = (
        entry("Root Entry", 5, 1, end, 0)
        + entry(stream_name, 2, no_stream, 2, 4096)
        + entry("", 0, no_stream, 0, 0)
        + entry("", 0, no_stream, 0, 0)
    )
    data = (
        (b"\xec\xa5\xc1\x00" + b"\x00" * 4092) if stream_name == "WordDocument" else b"\x00" * 4096
    )
    return bytes(header) + fat_bytes + directory + data


def exe() -> bytes:
    return (
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
    )
