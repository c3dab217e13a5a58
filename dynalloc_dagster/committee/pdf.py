"""The investment-committee PDF: a title page, then the report's sections as text pages
(matplotlib, A4 portrait), its tables and every chart.

The same :class:`~dynalloc_dagster.committee.text.ReportDocument` as the markdown report;
the PDF has no creation date or producer, so identical inputs give identical bytes.
"""

from __future__ import annotations

import io
import re
import textwrap
import zlib
from collections.abc import Iterable, Mapping

import matplotlib
from matplotlib import image as mpimg
from PIL import Image

matplotlib.use("Agg")
from matplotlib import pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure as MplFigure

from dynalloc_dagster.committee.plots import PNG_DPI, RECOMMENDED_ROW
from dynalloc_dagster.committee.text import Code, Figure, Markdown, ReportDocument, Table

PAGE = (8.27, 11.69)  # A4, inches
MARGIN_X = 0.08  # fractions of the page
TOP, BOTTOM = 0.94, 0.06
LINE = 0.0165  # height of a 9-pt text line, fraction of the page height
WRAP = 100  # characters per line of body text
TABLE_ROW = 0.022
PLAIN_TEXT = {"text.usetex": False, "text.parse_math": False}
"""Text is set as written: a narrative's "$5.2m (down 10%) to $4.1m" is two dollar
amounts, not a mathtext formula (which fails to parse or sets italics)."""
_INLINE = re.compile(r"\*\*|__|`|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")


def plain(text: str) -> str:
    """Markdown emphasis and code marks removed (the PDF sets text plainly)."""
    return _INLINE.sub("", text)


class _Pages:
    """A cursor over A4 pages: text, tables and images flow down, a new page when full."""

    def __init__(self, pdf: PdfPages, footer: str) -> None:
        self.pdf, self.footer, self.number = pdf, footer, 0
        self.fig: MplFigure | None = None
        self.y = TOP

    def new_page(self) -> None:
        self.flush()
        self.number += 1
        self.fig = plt.figure(figsize=PAGE)
        self.fig.text(MARGIN_X, 0.03, self.footer, fontsize=7, color="dimgrey")
        self.fig.text(1 - MARGIN_X, 0.03, str(self.number), fontsize=7, color="dimgrey",
                      ha="right")
        self.y = TOP

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            plt.close(self.fig)
            self.fig = None

    def room(self, height: float) -> MplFigure:
        if self.fig is None or self.y - height < BOTTOM:
            self.new_page()
        assert self.fig is not None
        return self.fig

    def text(self, text: str, *, size: float = 9, weight: str = "normal", indent: float = 0.0,
             wrap: int = WRAP, family: str = "sans-serif", gap: float = 0.4) -> None:
        lines = []
        for paragraph in text.split("\n"):
            lines += textwrap.wrap(paragraph, wrap, break_long_words=True) or [""]
        scale = size / 9
        for line in lines:
            fig = self.room(LINE * scale)
            fig.text(MARGIN_X + indent, self.y, line, fontsize=size, weight=weight,
                     family=family, va="top")
            self.y -= LINE * scale * 1.15
        self.y -= LINE * gap

    def heading(self, text: str, size: float = 13) -> None:
        self.room(LINE * 4)  # never a heading alone at the foot of a page
        self.y -= LINE * 0.5
        self.text(text, size=size, weight="bold", gap=0.5)

    def table(self, table: Table) -> None:
        rows = table.rows
        start = 0
        while start < len(rows) or start == 0:
            fit = max(1, int((self.y - BOTTOM) / TABLE_ROW) - 1)
            if fit < 3 and len(rows) - start > fit:
                self.new_page()
                continue
            chunk = rows[start:start + fit]
            height = TABLE_ROW * (len(chunk) + 1)
            fig = self.room(height)
            ax = fig.add_axes((MARGIN_X, self.y - height, 1 - 2 * MARGIN_X, height))
            ax.axis("off")
            header = table.header if any(table.header) else None
            drawn = ax.table(cellText=[[plain(c) for c in r] for r in chunk] or [[""]],
                             colLabels=header, loc="upper center", cellLoc="left",
                             bbox=(0, 0, 1, 1))
            drawn.auto_set_font_size(False)
            drawn.set_fontsize(7)
            first = 1 if header is not None else 0
            for (r, _), cell in drawn.get_celld().items():
                cell.set_linewidth(0.3)
                if r == 0 and header is not None:
                    cell.set_text_props(weight="bold")
                    cell.set_facecolor("#e8e8e8")
                elif start + r - first in table.highlight:
                    cell.set_text_props(weight="bold")
                    cell.set_facecolor(RECOMMENDED_ROW)
            drawn.auto_set_column_width(list(range(len(table.header))))
            self.y -= height + LINE
            start += len(chunk)
            if start >= len(rows):
                break
            self.new_page()

    def image(self, png: bytes, caption: str) -> None:
        picture = mpimg.imread(io.BytesIO(png), format="png")
        h_px, w_px = picture.shape[:2]
        width = 1 - 2 * MARGIN_X
        height = width * (h_px / w_px) * (PAGE[0] / PAGE[1])
        fig = self.room(height + LINE * 3)
        ax = fig.add_axes((MARGIN_X, self.y - height, width, height))
        ax.imshow(picture, interpolation="antialiased")
        ax.axis("off")
        self.y -= height + LINE * 0.3
        self.text(caption, size=8, gap=1.2)


def _markdown(pages: _Pages, text: str) -> None:
    """The narrative's markdown: headings, bullets and paragraphs, set plainly."""
    for block in re.split(r"\n\s*\n", text.strip()):
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                pages.heading(plain(stripped.lstrip("#").strip()), size=11)
            elif stripped.startswith(("- ", "* ")):
                pages.text("\u2022 " + plain(stripped[2:]), indent=0.02, wrap=WRAP - 4, gap=0.2)
            elif stripped:
                pages.text(plain(stripped), gap=0.2)
        pages.y -= LINE * 0.5


def _title_page(pages: _Pages, document: ReportDocument, facts: list[str]) -> None:
    pages.new_page()
    fig = pages.fig
    assert fig is not None
    fig.text(0.5, 0.72, document.title, fontsize=20, weight="bold", ha="center")
    fig.text(0.5, 0.67, "Investment committee report", fontsize=14, ha="center")
    fig.text(0.5, 0.62, "\n".join(textwrap.wrap(document.subtitle, 70)), fontsize=11,
             ha="center", va="top")
    fig.text(0.5, 0.45, "\n\n".join("\n".join(textwrap.wrap(plain(f), 80)) for f in facts),
             fontsize=10, ha="center", va="top")


def report_pdf(document: ReportDocument, charts: Mapping[str, bytes], footer: str,
               title_facts: list[str]) -> bytes:
    """The document as PDF bytes; ``charts`` maps each figure's name to its PNG;
    ``footer`` is printed on every page, ``title_facts`` on the title page. Text is set
    as text (:data:`PLAIN_TEXT`), never as TeX or mathtext."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(PLAIN_TEXT), PdfPages(
            buffer, metadata={"CreationDate": None, "Creator": None, "Producer": None}) as pdf:
        pages = _Pages(pdf, footer)
        _title_page(pages, document, title_facts)
        pages.new_page()
        for section in document.sections:
            if section.title == "Charts":
                pages.new_page()
            pages.heading(section.title)
            for block in section.blocks:
                match block:
                    case str():
                        pages.text(plain(block))
                    case Markdown():
                        _markdown(pages, block.text)
                    case Code():
                        pages.text(block.text, size=8, family="monospace", wrap=110)
                    case Table():
                        pages.table(block)
                    case Figure():
                        pages.image(charts[block.name], block.caption)
        pages.flush()
    return buffer.getvalue()


def pdf_of_pngs(pngs: Iterable[bytes], *, dpi: float = PNG_DPI) -> bytes:
    """Already-rendered PNGs as one PDF, a page each the image's size at ``dpi`` (pixels
    / dpi * 72 points), the pixels embedded as they are (RGB, lossless Flate; a chart's
    opaque alpha dropped). No creation date or producer: identical PNGs, identical bytes.

    A chart drawn once for its PNG is not drawn again for the PDF (a vector page per
    figure costs as much as its PNG)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]  # the page tree (2) comes last
    pages = []
    for png in pngs:
        image = Image.open(io.BytesIO(png)).convert("RGB")
        width, height = image.size
        size = f"{width / dpi * 72:.4f} {height / dpi * 72:.4f}"
        objects.append(_stream(
            f"/Type /XObject /Subtype /Image /Width {width} /Height {height}"
            " /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode",
            zlib.compress(image.tobytes())))
        objects.append(_stream("", f"q {size.replace(' ', ' 0 0 ')} 0 0 cm /Im0 Do Q".encode()))
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {size}] /Resources"
                       f" << /XObject << /Im0 {len(objects) - 1} 0 R >> >>"
                       f" /Contents {len(objects)} 0 R >>".encode())
        pages.append(len(objects))
    objects[1] = (f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in pages)}]"
                  f" /Count {len(pages)} >>").encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)


def _stream(header: str, data: bytes) -> bytes:
    return f"<< {header} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"
