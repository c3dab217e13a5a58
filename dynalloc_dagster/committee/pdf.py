"""The investment-committee PDF: a title page, then the report's sections as text pages
(A4 portrait), its tables and every chart, written with fpdf2.

The same :class:`~dynalloc_dagster.committee.text.ReportDocument` as the markdown report.
Text is set in DejaVu Sans (the font matplotlib ships and draws the charts in, embedded
as a subset, so any character of a narrative prints); tables are drawn as rows of
cells, the header bold on grey and the recommended rule's rows bold on
:data:`~dynalloc_dagster.committee.plots.RECOMMENDED_ROW`, the header repeated after a
page break; each chart is its PNG's pixels at the text width. The creation date is
fixed (:data:`FIXED_DATE`), so identical inputs give identical bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.image_datastructures import RasterImageInfo
from matplotlib.figure import Figure as MplFigure
from PIL import Image

from dynalloc_dagster.committee.plots import PNG_DPI, RECOMMENDED_ROW, rgb_pixels
from dynalloc_dagster.committee.png import compressed_scanlines, png_file, rgb_image_data
from dynalloc_dagster.committee.text import Code, Figure, Markdown, ReportDocument, Table

PAGE = (595.28, 841.89)  # A4, points
MARGIN_X = 0.08 * PAGE[0]
MARGIN_TOP = MARGIN_BOTTOM = 0.06 * PAGE[1]
BODY = 9.0  # points, body text
LEADING = 1.3  # line height / font size
TABLE_FONT = 7.0
TABLE_MIN_FONT = 5.0
"""A table wider than the page is set smaller, down to this size, then its cells wrap."""
TABLE_ROW = 1.9  # row height / table font size
ONE_LINE_SLACK = 0.01
"""Points a cell's text stays under its cell's width less the margins to be taken as one
line without the line breaker (whose widths are summed in another order)."""
HEADER_GREY = (232, 232, 232)
FIXED_DATE = datetime(1970, 1, 1, tzinfo=UTC)
"""The PDF's creation date, the same for every report: identical inputs, identical bytes."""
FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_FACES = {("sans", ""): "DejaVuSans.ttf", ("sans", "B"): "DejaVuSans-Bold.ttf",
          ("mono", ""): "DejaVuSansMono.ttf"}
_INLINE = re.compile(r"\*\*|__|`|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")


def plain(text: str) -> str:
    """Markdown emphasis and code marks removed (the PDF sets text plainly)."""
    return _INLINE.sub("", text)


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


class _Document(FPDF):
    """A4 pages with the footer and page number on each."""

    def __init__(self, footer: str) -> None:
        super().__init__(unit="pt", format="A4")
        self.footer_text = footer
        self.set_creation_date(FIXED_DATE)
        self.set_margins(MARGIN_X, MARGIN_TOP, MARGIN_X)
        self.set_auto_page_break(True, MARGIN_BOTTOM)
        for (family, style), file in _FACES.items():
            self.add_font(family, style, str(FONTS / file))
        self.set_font("sans", size=BODY)

    def footer(self) -> None:
        self.set_y(-0.045 * PAGE[1])
        self.set_font("sans", size=7)
        self.set_text_color(105)
        self.cell(0, 10, self.footer_text)
        self.set_x(MARGIN_X)
        self.cell(0, 10, str(self.page_no()), align="R")
        self.set_text_color(0)


class _Pages:
    """A cursor over the pages: text, tables and images flow down, a new page when full."""

    def __init__(self, footer: str) -> None:
        self.pdf = _Document(footer)

    @property
    def number(self) -> int:
        return self.pdf.page_no()

    @property
    def width(self) -> float:
        return PAGE[0] - 2 * MARGIN_X

    def new_page(self) -> None:
        self.pdf.add_page()

    def room(self, height: float) -> None:
        """A new page unless ``height`` points fit above the bottom margin."""
        if self.pdf.page == 0 or self.pdf.get_y() + height > PAGE[1] - MARGIN_BOTTOM:
            self.new_page()

    def text(self, text: str, *, size: float = BODY, bold: bool = False, indent: float = 0.0,
             mono: bool = False, gap: float = 0.4) -> None:
        """``text`` wrapped at the text width (less ``indent`` points), ``gap`` lines
        of space after it."""
        pdf = self.pdf
        self.room(size * LEADING)
        pdf.set_font("mono" if mono else "sans", "B" if bold else "", size)
        pdf.set_x(MARGIN_X + indent)
        pdf.multi_cell(self.width - indent, size * LEADING, text, align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(BODY * LEADING * gap)

    def heading(self, text: str, size: float = 13) -> None:
        self.room(BODY * LEADING * 4)  # never a heading alone at the foot of a page
        self.pdf.ln(BODY * LEADING * 0.5)
        self.text(text, size=size, bold=True, gap=0.5)

    def table(self, table: Table) -> None:
        """The table at the text width, its header repeated on each page it runs over."""
        pdf = self.pdf
        header = table.header if any(table.header) else None
        rows = [[plain(c) for c in row] for row in table.rows] or [[""]]
        size, widths = self._columns(header, rows)
        height = size * TABLE_ROW
        pdf.set_line_width(0.3)
        self.room(height * (2 if header else 1))
        if header:
            self._row(header, widths, size, HEADER_GREY)
        for i, row in enumerate(rows):
            fill = _rgb(RECOMMENDED_ROW) if i in table.highlight else None
            lines = self._lines(row, widths, size, bold=fill is not None)
            if pdf.get_y() + height * lines > PAGE[1] - MARGIN_BOTTOM:
                self.new_page()
                if header:
                    self._row(header, widths, size, HEADER_GREY)
            self._row(row, widths, size, fill, lines=lines)
        pdf.ln(BODY * LEADING)

    def _columns(self, header: list[str] | None, rows: list[list[str]]
                 ) -> tuple[float, list[float]]:
        """(font size, column widths): each column as wide as its widest cell on one line
        (bold: a highlighted row is) or its header's longest word, set smaller when that
        is wider than the text (at least :data:`TABLE_MIN_FONT`; past it cells wrap),
        stretched to the text width."""
        pad = 2 * self.pdf.c_margin
        self.pdf.set_font("sans", "B", TABLE_FONT)
        width = self.pdf.get_string_width
        text = [max(width(cell) for cell in column) for column in zip(*rows, strict=True)]
        if header:
            text = [max(w, *(width(word) for word in name.split() or [""]))
                    for w, name in zip(text, header, strict=True)]
        size = TABLE_FONT
        if sum(text) + pad * len(text) > self.width:
            size = max(TABLE_MIN_FONT, TABLE_FONT * (self.width - pad * len(text)) / sum(text))
        natural = [w * size / TABLE_FONT + pad for w in text]
        return size, [w * self.width / sum(natural) for w in natural]

    def _lines(self, cells: list[str], widths: list[float], size: float, *, bold: bool
               ) -> int:
        """Lines of the row's tallest cell at ``widths``: one when every cell's text is
        narrower than its cell less the cell margins by :data:`ONE_LINE_SLACK` (most rows:
        no line breaking tried), else as the line breaker wraps them."""
        pdf = self.pdf
        pdf.set_font("sans", "B" if bold else "", size)
        room = 2 * pdf.c_margin + ONE_LINE_SLACK
        if all("\n" not in c and pdf.get_string_width(c) <= w - room
               for c, w in zip(cells, widths, strict=True)):
            return 1
        return max(len(pdf.multi_cell(w, size, c, dry_run=True, output="LINES"))
                   for c, w in zip(cells, widths, strict=True))

    def _row(self, cells: list[str], widths: list[float], size: float,
             fill: tuple[int, int, int] | None, *, lines: int | None = None) -> None:
        """One row of bordered cells, ``lines`` high (default: its tallest cell's);
        ``fill``: its background, and its text bold."""
        pdf = self.pdf
        bold = fill is not None
        height = size * TABLE_ROW
        lines = lines or self._lines(cells, widths, size, bold=bold)
        y, x = pdf.get_y(), MARGIN_X
        if fill:
            pdf.set_fill_color(*fill)
        pdf.set_font("sans", "B" if bold else "", size)
        for cell, width in zip(cells, widths, strict=True):
            pdf.rect(x, y, width, height * lines, style="DF" if fill else "D")
            pdf.set_xy(x, y)
            if lines == 1:  # fits on its line: set as it is, without the line breaker
                pdf.cell(width, height, cell, align="L", new_x=XPos.RIGHT, new_y=YPos.TOP)
            else:
                pdf.multi_cell(width, height, cell, align="L", new_x=XPos.RIGHT,
                               new_y=YPos.TOP)
            x += width
        pdf.set_xy(MARGIN_X, y + height * lines)

    def image(self, page: ChartPage, caption: str) -> None:
        """The chart at the text width, its caption under it."""
        height = self.width * page.height / page.width
        self.room(height + BODY * LEADING * 3)
        self.pdf.image(self._cached(page), x=MARGIN_X, y=self.pdf.get_y(), w=self.width,
                       h=height)
        self.pdf.set_y(self.pdf.get_y() + height + BODY * LEADING * 0.3)
        self.text(caption, size=8, gap=1.2)

    def _cached(self, page: ChartPage) -> str:
        """The name under which the chart's image stands in fpdf2's image cache, entered
        there as fpdf2's own parsing of its pixels enters an RGB picture (``preload_image``:
        the rows under PNG predictors, zlib-compressed), with the chart's compressed rows
        as they are: fpdf2 would decode and compress them again, some 10 ms a chart. Named
        by its content, as fpdf2 names a picture, so a chart placed twice is stored once."""
        images = self.pdf.image_cache.images
        name = f"chart {hashlib.sha256(page.data).hexdigest()}"
        if name not in images:
            images[name] = RasterImageInfo(
                data=page.data, w=page.width, h=page.height, cs="DeviceRGB", iccp=None,
                bpc=8, dpn=3, f="FlateDecode", inverted=False,
                dp=f"/Predictor 15 /Colors 3 /Columns {page.width}",
                i=len(images) + 1, usages=0, iccp_i=None)
        return name


def _markdown(pages: _Pages, text: str) -> None:
    """The narrative's markdown: headings, bullets and paragraphs, set plainly."""
    for block in re.split(r"\n\s*\n", text.strip()):
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                pages.heading(plain(stripped.lstrip("#").strip()), size=11)
            elif stripped.startswith(("- ", "* ")):
                pages.text("\u2022 " + plain(stripped[2:]), indent=6.0, gap=0.2)
            elif stripped:
                pages.text(plain(stripped), gap=0.2)
        pages.pdf.ln(BODY * LEADING * 0.5)


def _title_page(pages: _Pages, document: ReportDocument, facts: list[str]) -> None:
    pages.new_page()
    pdf = pages.pdf
    pdf.set_y(0.26 * PAGE[1])
    for text, size, bold, gap in ((document.title, 20, True, 14),
                                  ("Investment committee report", 14, False, 18),
                                  (document.subtitle, 11, False, 0.12 * PAGE[1])):
        pdf.set_font("sans", "B" if bold else "", size)
        pdf.multi_cell(0, size * LEADING, text, align="C", new_x=XPos.LMARGIN,
                       new_y=YPos.NEXT)
        pdf.ln(gap)
    pdf.set_font("sans", "", 10)
    for fact in facts:
        pdf.set_x(MARGIN_X + 40)
        pdf.multi_cell(pages.width - 80, 10 * LEADING, plain(fact), align="C",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(10)


def report_pdf(document: ReportDocument, charts: Mapping[str, bytes], footer: str,
               title_facts: list[str]) -> bytes:
    """The document as PDF bytes; ``charts`` maps each figure's name to its PNG (each
    placed as :func:`chart_page` reads it); ``footer`` is printed on every page,
    ``title_facts`` on the title page. Text is set as written (a narrative's "$5.2m" is
    dollars, never a formula)."""
    pages = _Pages(footer)
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
                    pages.text(block.text, size=8, mono=True)
                case Table():
                    pages.table(block)
                case Figure():
                    pages.image(chart_page(charts[block.name]), block.caption)
    return bytes(pages.pdf.output())


class ChartPage(NamedTuple):
    """A chart as a page image of charts.pdf: its size in pixels and its RGB pixels as its
    PNG's compressed scanlines (the image stream's data, read with PNG predictors)."""

    width: int
    height: int
    data: bytes


def chart_page(png: bytes) -> ChartPage:
    """The PNG's pixels as a PDF page image, losslessly: an 8-bit RGB PNG's image data as
    it is (:func:`~dynalloc_dagster.committee.png.rgb_image_data`: every chart's, not
    decoded), any other PNG decoded, its (opaque) alpha dropped, and compressed again."""
    image_data = rgb_image_data(png)
    if image_data is not None:
        return ChartPage(*image_data)
    return page_of(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))


def page_of(pixels: np.ndarray) -> ChartPage:
    """RGB pixels ((height, width, 3) uint8) as a charts.pdf page image: their PNG's
    compressed scanlines (:func:`~dynalloc_dagster.committee.png.compressed_scanlines`)."""
    height, width, _ = pixels.shape
    return ChartPage(width, height, compressed_scanlines(pixels))


def png_and_page(fig: MplFigure) -> tuple[bytes, ChartPage]:
    """The figure's PNG and its charts.pdf page, both of the pixels drawn once
    (:func:`plots.rgb_pixels`) and compressed once: what a chart worker draws, so pages
    are encoded in parallel and no PNG is decoded again for its page."""
    page = page_of(rgb_pixels(fig))
    return png_file(page.width, page.height, page.data, PNG_DPI), page


def pdf_of_pages(pages: Iterable[ChartPage], *, dpi: float = PNG_DPI) -> bytes:
    """Already-rendered charts (:func:`chart_page`) as one PDF, a page each the image's size
    at ``dpi`` (pixels / dpi * 72 points), the pixels embedded as they are. No creation
    date or producer: identical charts, identical bytes.

    A chart drawn once for its PNG is not drawn again for the PDF (a vector page per
    figure costs as much as its PNG)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]  # the page tree (2) comes last
    pages_at = []
    for width, height, data in pages:
        size = f"{width / dpi * 72:.4f} {height / dpi * 72:.4f}"
        objects.append(_stream(
            f"/Type /XObject /Subtype /Image /Width {width} /Height {height}"
            " /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode"
            f" /DecodeParms << /Predictor 15 /Colors 3 /BitsPerComponent 8 /Columns {width} >>",
            data))
        objects.append(_stream("", f"q {size.replace(' ', ' 0 0 ')} 0 0 cm /Im0 Do Q".encode()))
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {size}] /Resources"
                       f" << /XObject << /Im0 {len(objects) - 1} 0 R >> >>"
                       f" /Contents {len(objects)} 0 R >>".encode())
        pages_at.append(len(objects))
    objects[1] = (f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in pages_at)}]"
                  f" /Count {len(pages_at)} >>").encode()
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
