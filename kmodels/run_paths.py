"""Paths a spec may name: callback files and folders, always strictly inside the run directory."""

from __future__ import annotations

import re
from typing import Any

from kmodels.errors import ConfigError
from kmodels.saving import RUN_FILES

#: Callback arguments that name files or folders; they always resolve inside the run directory.
CALLBACK_PATH_KEYS = ("filepath", "filename", "backup_dir", "log_dir")


def check_run_path(value: Any, where: str) -> str:
    """Check that `value` names a path strictly inside the run directory; return it normalised.

    A spec may only name files and folders of its own run: an absolute path, a `~`
    or a `..` component is a `ConfigError`, so no callback can write, append to or
    delete anything outside the run (Keras's `BackupAndRestore` deletes its
    `backup_dir` when training ends).

    Example:
        >>> check_run_path("logs/train.csv", "[[callbacks]] 'csv_logger' filename")
        'logs/train.csv'
    """
    if not isinstance(value, str):
        raise ConfigError(f"{where}: received {value!r}; expected a path relative to the run directory.")
    _check_format_fields(value, where)
    text = value.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":") or ".." in parts or not parts:
        raise ConfigError(
            f"{where}: received {value!r}. Expected a path inside the run directory, relative to it "
            "(e.g. 'backup' or 'logs/training_log.csv'): absolute paths, '~', '..' and the run directory "
            "itself are refused so that a spec can never write or delete outside its run."
        )
    if len(parts) == 1 and parts[0] in RUN_FILES:
        raise ConfigError(f"{where}: received {value!r}, a file kmodels writes itself; choose another name.")
    return "/".join(parts)


#: The format spec a `{field:spec}` in a callback path may carry: width, precision and a numeric type, no fill.
_NUMERIC_FORMAT = re.compile(r"[+-]?0?\d*(\.\d+)?[deEfFgG%]?")


def _check_format_fields(value: str, where: str) -> None:
    """Refuse `{...}` fields in a callback path that could format into something other than a number.

    Keras formats `model_checkpoint`'s filepath with the epoch and the logs (numbers), so a field
    is `{epoch}` or `{val_loss:.3f}`: a plain name and a numeric format. A conversion (`!s`), a fill
    character, an attribute or an index could make a field print `..`, `/` or nothing, and so lead
    outside the run after formatting although the text passed the check.
    """
    import string

    try:
        fields = [f for f in string.Formatter().parse(value) if f[1] is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}: received {value!r}, not a valid format string ({exc}).") from None
    for _, name, spec, conversion in fields:
        if conversion is not None or not name.isidentifier() or not _NUMERIC_FORMAT.fullmatch(spec or ""):
            raise ConfigError(f"{where}: received {value!r}. A '{{...}}' field in a path must be a plain name "
                              "with an optional numeric format, e.g. 'ckpt/{epoch:02d}.keras' or "
                              "'{val_loss:.3f}.keras'; conversions (!s), fill characters, attributes and indexes "
                              "are refused, so the formatted path stays inside the run.")
