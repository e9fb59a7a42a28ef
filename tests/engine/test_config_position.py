"""Where a setting sits in a JSON5 config text (engine/config_position.py)."""

from __future__ import annotations

from sessiond.engine.config_position import json5_error_position, locate_setting

TEXT = """// a comment with session: { maintenance: { mode: 1 } } in it
{
  /* "session": { */ agents: { list: [ { id: "a{b" }, { id: 'c]d' } ] },
  'session': {
    dmScope: "main",
    maintenance: {
      mode: "sometimes",
    },
  },
  session: { maintenance: { mode: "later one" } },
}
"""


def test_the_last_occurrence_of_the_deepest_key_is_named() -> None:
    assert locate_setting(TEXT, "session.maintenance.mode") == (10, 29)
    assert locate_setting(TEXT, "session.dmScope") == (5, 5)
    # Not there at all: the deepest key that is.
    assert locate_setting(TEXT, "session.maintenance.pruneAfter") == (10, 14)
    assert locate_setting(TEXT, "gateway.auth.token") is None


def test_json5_error_messages_become_a_position() -> None:
    assert json5_error_position('<string>:2 Unexpected "," at column 9') == (
        'Unexpected ","',
        (2, 9),
    )
    assert json5_error_position('<string>:3 Unexpected "\n" at column 1') == (
        'Unexpected "\\n"',
        (3, 1),
    )
    assert json5_error_position("something else") is None
