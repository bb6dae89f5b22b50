"""SQL of more than one line lives in `.sql` files beside the module that runs it, read once."""

import functools
from pathlib import Path


@functools.cache
def load_sql(module_file: str, name: str) -> str:
    """The statement in `sql/<name>` next to `module_file` (pass `__file__`), read on first use and kept.

    Whole-line `--` comments are for the reader of the file and are left out of what is sent, so the
    server parses less and a `%` in a comment is never taken for a placeholder; so is each line's indentation,
    which keeps the ledger's statements under psycopg's 4 KB limit for caching a statement's parsed placeholders
    (above it, every call parses the text again)."""
    text = (Path(module_file).resolve().parent / "sql" / name).read_text(encoding="utf-8")
    return "\n".join(line.strip() for line in text.splitlines() if not line.lstrip().startswith("--")).strip() + "\n"
