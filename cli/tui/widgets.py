"""The TUI's own widgets: a table that draws only the rows on screen, and one-line bars.

Textual's DataTable builds a render object per row as rows are added (about 11 s for 100k rows
on this machine), so the session and action tables draw from a `TableSource` instead: the
widget asks for the cells of the rows in view, and a change costs a refresh, not a rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

ELLIPSIS = "…"

# Colours the tables use for named things (an action, a state), one per theme brightness so each
# stays legible on a light and on a dark background.
PALETTE: dict[str, tuple[str, str]] = {
    "red": ("#FF7B7B", "#B00020"),
    "orange": ("#FFB35C", "#94560A"),
    "magenta": ("#E08CFF", "#7B1FA2"),
    "cyan": ("#5FD7E6", "#006B78"),
    "blue": ("#86AEFF", "#1A4FB5"),
    "green": ("#86C98A", "#2E6B2E"),
    "grey": ("#9A9A9A", "#5E5E5E"),
}


def palette_style(name: str | None, dark: bool) -> Style:
    if name is None or name not in PALETTE:
        return Style()
    dark_colour, light_colour = PALETTE[name]
    return Style(color=dark_colour if dark else light_colour)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int
    """Cells it takes (a flex column takes at least this and shares what is left)."""
    flex: int = 0
    """Its share of the cells left over (0: fixed width)."""
    right: bool = False
    middle: bool = False
    """Cut a long value in the middle (keys differ at both ends), not at the end."""
    drop: int = 0
    """When the table is too narrow, columns go highest `drop` first (0: always shown)."""


class TableSource(Protocol):
    """What a VirtualTable draws: a length, and the cells of one row at a time."""

    def __len__(self) -> int: ...

    def cells(self, index: int) -> Sequence[str]: ...

    def colour(self, index: int, column: int) -> str | None:
        """A PALETTE name for one cell, or None for the table's own colour."""


def fit(text: str, width: int, *, right: bool = False, middle: bool = False) -> str:
    """`text` in exactly `width` cells: padded, or cut with an ellipsis."""
    if width <= 0:
        return ""
    text = text.replace("\n", " ")
    length = cell_len(text)
    if length <= width:
        pad = " " * (width - length)
        return pad + text if right else text + pad
    if width == 1:
        return ELLIPSIS
    if middle and width >= 7:
        head = (width - 1) // 2
        tail = width - 1 - head
        start = chop_cells(text, head)[0]
        end = "".join(chop_cells(text[::-1], tail)[0])[::-1]
        return fit(start + ELLIPSIS + end, width)
    return fit(chop_cells(text, width - 1)[0] + ELLIPSIS, width)


def shown_columns(columns: Sequence[Column], width: int) -> list[int]:
    """Which columns fit `width` at their least width, dropping by `drop`, highest first."""
    shown = list(range(len(columns)))
    droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop)
    while droppable and sum(columns[i].width for i in shown) + len(shown) - 1 > width:
        shown.remove(droppable.pop()[1])
    return shown


def layout(columns: Sequence[Column], width: int) -> list[int]:
    """Each column's width in `width` cells (one space between columns)."""
    fixed = sum(c.width for c in columns if not c.flex) + len(columns) - 1
    flex = [i for i, c in enumerate(columns) if c.flex]
    widths = [c.width for c in columns]
    if flex:
        spare = max(0, width - fixed)
        shares = sum(columns[i].flex for i in flex)
        given = 0
        for n, i in enumerate(flex):
            part = spare - given if n == len(flex) - 1 else spare * columns[i].flex // shares
            given += part
            widths[i] = max(columns[i].width, part)
    return widths


class VirtualTable(ScrollView, can_focus=True):
    """A keyboard-driven table over a TableSource; the header stays put while rows scroll."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--empty",
    }
    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        height: 1fr;
    }
    VirtualTable > .virtual-table--header {
        background: $panel;
        color: $text-primary;
        text-style: bold;
    }
    VirtualTable > .virtual-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }
    VirtualTable:focus > .virtual-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    VirtualTable > .virtual-table--empty {
        color: $text-muted;
        text-style: italic;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        # Arrows only: the screens bind letters (k, g, ...) to their own actions.
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        def __init__(self, table: VirtualTable, index: int) -> None:
            super().__init__()
            self.table = table
            self.index = index

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        source: TableSource,
        *,
        empty: str = "nothing to show",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.source = source
        self.empty = empty
        self._drawn_rows = 0
        self._dark = True

    # ------------------------------------------------------------------------------ API

    @property
    def rows_drawn(self) -> int:
        """Rows with data in the last frame drawn (0 until the first one with data)."""
        return self._drawn_rows

    def reload(self, cursor: int | None = None) -> None:
        """The source changed: resize, keep the cursor on `cursor` (or in range), redraw."""
        count = len(self.source)
        self.virtual_size = Size(self.size.width, count + 1)
        target = self.cursor if cursor is None else cursor
        self.cursor = max(0, min(target, count - 1))
        self.refresh()

    def on_resize(self) -> None:
        self.reload()

    # ---------------------------------------------------------------------------- actions

    def action_move(self, step: int) -> None:
        self.cursor = max(0, min(self.cursor + step, len(self.source) - 1))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self.cursor = max(0, len(self.source) - 1) if where < 0 else 0

    def on_click(self, event: Click) -> None:
        if event.y >= 1:
            index = int(self.scroll_offset.y) + event.y - 1
            if 0 <= index < len(self.source):
                self.cursor = index

    def watch_cursor(self, old: int, new: int) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False, immediate=True)
        self.refresh()
        if len(self.source):
            self.post_message(self.Highlighted(self, new))

    # ---------------------------------------------------------------------------- drawing

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._dark = self.app.current_theme.dark
        base = self.rich_style
        shown = shown_columns(self.columns, width)
        if y == 0:
            style = self.get_component_rich_style("virtual-table--header")
            cells = [c.title for c in self.columns]
            return self._strip(shown, cells, width, base + style, None)
        count = len(self.source)
        index = int(self.scroll_offset.y) + y - 1
        if count == 0:
            if y == 1:
                style = self.get_component_rich_style("virtual-table--empty")
                return Strip([Segment(fit(f" {self.empty}", width), base + style)], width)
            return Strip.blank(width, base)
        if index >= count:
            return Strip.blank(width, base)
        self._drawn_rows = max(self._drawn_rows, 1)
        style = base
        if index == self.cursor:
            style = base + self.get_component_rich_style("virtual-table--cursor")
        return self._strip(shown, self.source.cells(index), width, style, index)

    def _strip(
        self,
        shown: list[int],
        cells: Sequence[str],
        width: int,
        style: Style,
        index: int | None,
    ) -> Strip:
        columns = [self.columns[n] for n in shown]
        widths = layout(columns, width)
        segments: list[Segment] = []
        for place, (n, column, cell_width) in enumerate(zip(shown, columns, widths, strict=True)):
            if place:
                segments.append(Segment(" ", style))
            cell = cells[n] if n < len(cells) else ""
            text = fit(cell, cell_width, right=column.right, middle=column.middle)
            colour = None if index is None else self.source.colour(index, n)
            cell_style = style + palette_style(colour, self._dark) if colour else style
            segments.append(Segment(text, cell_style))
        return Strip(segments).crop_extend(0, width, style)
