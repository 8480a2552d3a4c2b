"""How `mirror` logs on stderr: one line per event, whatever the message holds, so cron
mail, journald and Loki see one record per event.

- `OneLineFormatter`: `mirror: <message>`, with newlines (and other control characters)
  in the message or a traceback escaped (`\\n`, `\\t`, `\\x1b`), the traceback after
  ` | `;
- `JsonLineFormatter` (`--log-json`): one JSON object per line with `ts` (UTC, ISO 8601),
  `level`, `logger`, `msg` and, when there is one, `exc` (the traceback, one string).

Neither adds anything the message does not hold: what is kept out of messages (subscriber
addresses, passwords, keys) stays out of both.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """`text` on one line: CR, LF and tab escaped as in Python, any other unprintable
    character (line separators, a terminal escape in an article's title) as \\xNN or
    \\uNNNN. Backslashes stay as they are: the line is for reading, not for parsing."""
    return "".join(c if c.isprintable() or c == " " else _escaped(c) for c in text)


def _escaped(character: str) -> str:
    if character in _ESCAPES:
        return _ESCAPES[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class OneLineFormatter(logging.Formatter):
    """`mirror: message`, one line per record (a traceback follows after ` | `)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"mirror: {record.getMessage()}"
        trace = self._trace(record)
        return one_line(f"{line} | {trace}" if trace else line)

    def _trace(self, record: logging.LogRecord) -> str:
        text = self.formatException(record.exc_info) if record.exc_info else ""
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}".strip()
        return text


class JsonLineFormatter(OneLineFormatter):
    """One JSON object per record: ts, level, logger, msg, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace = self._trace(record)
        if trace:
            entry["exc"] = trace
        return json.dumps(entry, ensure_ascii=False)  # json escapes every control character
