"""The jinja2 Environment every writer renders with, and the filters that keep a
profile value from changing what a generated file means.

Validation (builder/profile) is the first defence; this is the second, for a value
that got past it: each one is quoted for its file's syntax, or refused with an
InputError that names the template and the value. Never written as syntax.

- Every `{{ value }}` is refused if it holds a newline, CR, NUL or another control
  character (almost every config syntax starts a new directive at a line break),
  unless the template marks it `| block`: a deliberate multi-line text (macro
  output, a long description), which may hold newlines only.
- In an RPM spec (`*.spec.j2`) every value also has `%` doubled, so no macro
  expands (`%(cmd)` runs cmd on the build host), and none may start a line
  with `%` (a new section such as `%pre`, even as the escaped `%%pre`).

Filters, each for one syntax:
    sh      a shell word, quoted (shlex.quote); a list gives one word per item.
            A leading - is refused (it would be read as an option)
    word    a bare token (letters, digits, _.:/@+~-, no leading -) for places
            that cannot quote; refuses anything else. Also for the items of a
            list inside double quotes that the shell splits later ("$UNITS")
    hares   a haresources argument: a word without ':' ('::' separates arguments)
    drbd    a DRBD config string: double-quoted, backslash and quote escaped
    msmtp   an msmtp argument in double quotes (msmtp strips one enclosing pair
            and takes the rest verbatim: it has no escapes)
    ini     a systemd-style ini value (units, .link, repart.d, mkosi.conf):
            `%` doubled (specifiers), no trailing backslash (continues the line)
    sql     a single-quoted SQL string: ' doubled, backslash refused (its meaning
            depends on the server's sql_mode)
    debdep  one Debian relation (`name [(op version)]`, alternatives with |)
    rpmdep  one RPM dependency (`name [op version]`)
    block   marks deliberate multi-line text (see above)
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Callable
from typing import Any, NoReturn

import jinja2
from jinja2.runtime import Context

from builder.errors import InputError
from builder.profile.secrets import Secrets


class Block(str):
    """Text the template means to be several lines; finalize lets its newlines through."""


def _refuse(context: Context, value: object, why: str) -> NoReturn:
    raise InputError(
        f"template {context.name}: refusing the value {_shown(context, value)}: {why}",
        hint="validation should have refused it: correct the profile value (and report the gap)",
    )


def _shown(context: Context, value: object) -> str:
    text = str(value)
    secrets = context.get("s")
    if isinstance(secrets, Secrets) and any(v in text for v in secrets.values()):
        return "(a secret, not shown)"
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:56] + "...'"


def _control_char(text: str, *, newline_ok: bool) -> str | None:
    for ch in text:
        # Cc: C0/C1 controls, DEL; Zl/Zp: U+2028/U+2029, which splitlines() also breaks at.
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") and not (newline_ok and ch == "\n"):
            return ch
    return None


@jinja2.pass_context
def _finalize(context: Context, value: Any) -> Any:
    text = str(value)  # StrictUndefined raises here, as without a finalize
    bad = _control_char(text, newline_ok=isinstance(value, Block))
    if bad is not None:
        _refuse(context, value, f"it holds the control character {bad!r} (a line break starts a new directive)")
    if (context.name or "").endswith(".spec.j2"):
        return _rpm(context, text)
    return value


def _rpm(context: Context, text: str) -> str:
    if any(line.startswith("%") for line in text.split("\n")):
        _refuse(context, text, "a line of an RPM spec that starts with % is a section or a macro")
    return text.replace("%", "%%")


@jinja2.pass_context
def sh(context: Context, value: object) -> str:
    words = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    for w in words:
        if w.startswith("-"):
            _refuse(context, w, "a shell word that starts with - reads as a command's option")
    return " ".join(shlex.quote(w) for w in words)


def _token(pattern: str, why: str) -> Callable[[Context, object], str]:
    """A filter for places that cannot quote: the value as it is if it matches whole, else refused."""
    regex = re.compile(pattern)

    @jinja2.pass_context
    def check(context: Context, value: object) -> str:
        text = str(value)
        if not regex.fullmatch(text):
            _refuse(context, value, why)
        return text

    return check


# No leading '-' (an option to whatever reads it).
word = _token(r"[A-Za-z0-9_.:/@+~][A-Za-z0-9_.:/@+~-]*", "only letters, digits and _.:/@+~- can stand unquoted here")
hares = _token(r"[A-Za-z0-9_./@+~][A-Za-z0-9_./@+~-]*",
               "haresources splits resources at spaces and arguments at '::' and cannot quote; "
               "only letters, digits and _./@+~- fit")


def drbd(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def msmtp(value: object) -> str:
    return f'"{value}"'


@jinja2.pass_context
def ini(context: Context, value: object) -> str:
    text = str(value)
    if text.endswith("\\"):
        _refuse(context, value, "a trailing backslash continues the line in a systemd-style file")
    return text.replace("%", "%%")


@jinja2.pass_context
def sql(context: Context, value: object) -> str:
    text = str(value)
    if "\\" in text:
        _refuse(context, value, "a backslash in an SQL string means different things by sql_mode")
    return "'" + text.replace("'", "''") + "'"


_DEB_RELATION = re.compile(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?( *\( *(<<|<=|=|>=|>>) *[A-Za-z0-9.+~:-]+ *\))?")


@jinja2.pass_context
def debdep(context: Context, value: object) -> str:
    text = str(value)
    if not all(_DEB_RELATION.fullmatch(alt.strip(" ")) for alt in text.split("|")):
        _refuse(context, value, "not a Debian package relation such as `name` or `name (>= 1.0)`")
    return text


rpmdep = _token(r"[A-Za-z0-9_/][A-Za-z0-9_.+/-]*(\([A-Za-z0-9_.:+-]+\))?( +(<|>|<=|>=|=) +[A-Za-z0-9_.+~^:-]+)?",
                "not an RPM dependency such as `name` or `name >= 1.0`")


def block(value: object) -> Block:
    return Block(value)


FILTERS = {"sh": sh, "word": word, "hares": hares, "drbd": drbd, "msmtp": msmtp, "ini": ini, "sql": sql,
           "debdep": debdep, "rpmdep": rpmdep, "block": block}


def environment(loader: jinja2.BaseLoader, **options: Any) -> jinja2.Environment:
    """StrictUndefined (a typo is an error, not an empty string), the checks above, the filters."""
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
        **options,
    )
    env.filters.update(FILTERS)
    return env
