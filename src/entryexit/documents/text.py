"""Field-level rules for text that enters from documents and manifests, in one place.

Every parser (JSON and CSV manifests, PAXLST, MRZ, DG1) and every entrypoint that takes a
document's issuing state or number by itself (a URL, a form) goes through these functions, so
a value means the same thing whichever way it arrived, and anything stored can be read back:

- :func:`normalise_state`: ICAO 9303 state codes. Germany's ``D`` is written ``D<<`` in an MRZ
  and ``D`` elsewhere; both become ``D``. Every other code is three letters.
- :func:`normalise_document_number`: 1 to 20 letters or digits, upper case.
- :func:`check_name`: Unicode scalar values only (no lone surrogates), at most
  :data:`MAX_NAME_LENGTH` characters, none of the invisible or reordering characters
  (controls, bidi overrides and isolates, zero-width characters, BOM, private use, unassigned
  code points, line and paragraph separators).
- :func:`excerpt`: what an error message may echo of a value: never more than a few dozen
  characters, however large the input.
- :func:`check_json_depth`: refuses JSON nested deeper than a manifest ever is, before a
  recursive parser sees it.

These raise :class:`~entryexit.errors.InvalidInputError` (or the caller's subclass); nothing
here does I/O.
"""

from __future__ import annotations

import re
import unicodedata

from entryexit.errors import InvalidInputError

# One cap on the travelers of one manifest, whatever its format (JSON, CSV, PAXLST).
MAX_TRAVELERS = 10_000
MAX_NAME_LENGTH = 100
MAX_DOCUMENT_NUMBER_LENGTH = 20
# A manifest is {"travelers": [{...}]}: depth 3. Anything much deeper is not a manifest.
MAX_JSON_DEPTH = 32
# How much of a value an error message echoes.
EXCERPT_LENGTH = 40

_STATE = re.compile(r"[A-Z]{3}|D<{0,2}")
_DOCUMENT_NUMBER = re.compile(rf"[A-Z0-9]{{1,{MAX_DOCUMENT_NUMBER_LENGTH}}}")
# Categories refused in names: Cc control, Cf format (bidi controls, zero-width characters,
# BOM, soft hyphen), Cs surrogate, Co private use, Cn unassigned, Zl/Zp line and paragraph
# separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_PLAIN = re.compile(r"[ -~]*")  # printable ASCII: the common case, checked without a loop


def excerpt(value: object, limit: int = EXCERPT_LENGTH) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long the value was.

    Safe for any value, including huge strings and strings with lone surrogates.
    """
    if isinstance(value, (str, bytes)):
        if len(value) <= limit:
            return repr(value)
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}... ({len(value)} {unit})"
    text = (
        repr(value)
        if isinstance(value, (int, float, bool)) or value is None
        else type(value).__name__
    )
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def normalise_state(value: str) -> str:
    """The ICAO 9303 code of a state or organisation, as stored everywhere.

    Surrounding spaces are ignored and letters upper-cased; the MRZ filler after Germany's
    one-letter code is dropped (``D<<`` and ``D<`` become ``D``). Every other code is three
    letters A-Z.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"a state code must be text, not {type(value).__name__}")
    state = value.strip().upper()
    if len(state) > 3 or not _STATE.fullmatch(state):
        raise InvalidInputError(
            f"issuing state or nationality {excerpt(value)} is not an ICAO 9303 three-letter code"
        )
    return state.rstrip("<")


def normalise_document_number(value: str) -> str:
    """A document number as stored: upper case, inner spaces removed, 1 to 20 letters or
    digits."""
    if not isinstance(value, str):
        raise InvalidInputError(f"a document number must be text, not {type(value).__name__}")
    if len(value) > 4 * MAX_DOCUMENT_NUMBER_LENGTH:
        raise InvalidInputError(
            f"a document number must be 1 to {MAX_DOCUMENT_NUMBER_LENGTH} letters or digits;"
            f" got {len(value)} characters"
        )
    number = value.strip().upper().replace(" ", "")
    if not _DOCUMENT_NUMBER.fullmatch(number):
        raise InvalidInputError(
            f"a document number must be 1 to {MAX_DOCUMENT_NUMBER_LENGTH} letters or digits"
        )
    return number


def refused_character(text: str) -> tuple[int, str] | None:
    """The first character a stored name may not hold, with its 1-based position; None if
    every character is allowed."""
    if _PLAIN.fullmatch(text):
        return None
    for position, character in enumerate(text, start=1):
        if character < " " or unicodedata.category(character) in _REFUSED_CATEGORIES:
            return position, character
    return None


# Combining marks one base letter may carry in a name (after NFC): Vietnamese stacks two
# (e.g. U+1EC7 is one letter after NFC; a decomposed form is composed first); more draw far
# above and below the line, over the neighbouring rows an officer reads (review L4).
MAX_COMBINING_RUN = 2


def stacked_marks(text: str) -> int | None:
    """The 1-based position (in the NFC form) of the first combining mark beyond
    :data:`MAX_COMBINING_RUN` in a row; None when there is none."""
    if text.isascii():
        return None
    run = 0
    for position, character in enumerate(unicodedata.normalize("NFC", text), start=1):
        if unicodedata.category(character) in ("Mn", "Mc", "Me"):
            run += 1
            if run > MAX_COMBINING_RUN:
                return position
        else:
            run = 0
    return None


def check_machine_label(value: str, what: str, max_length: int) -> str:
    """A gate's or device's label (a machine name shown to officers): stripped, 1 to
    ``max_length`` printable ASCII characters (review L4: no combining marks, homoglyphs or
    direction controls in a name an officer trusts to say where a capture came from)."""
    text = value.strip()
    if not text or len(text) > max_length or not (text.isascii() and text.isprintable()):
        raise InvalidInputError(f"{what} must be 1 to {max_length} printable ASCII characters")
    return text


def check_name(value: object, label: str, *, required: bool) -> str:
    """A person's name as stored: stripped, at most :data:`MAX_NAME_LENGTH` characters of
    visible text (see the module docstring); ``required`` names may not be empty."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInputError(f"'{label}' must be text, not {type(value).__name__}")
    if len(value) > 4 * MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"'{label}' is {len(value)} characters long; at most {MAX_NAME_LENGTH} are accepted"
        )
    text = value.strip()
    if required and not text:
        raise InvalidInputError(f"'{label}' is missing")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"'{label}' is {len(text)} characters long; at most {MAX_NAME_LENGTH} are accepted"
        )
    refused = refused_character(text)
    if refused is not None:
        position, character = refused
        raise InvalidInputError(
            f"'{label}' has control characters or invisible or invalid ones:"
            f" U+{ord(character):04X} at position {position}"
        )
    stacked = stacked_marks(text)
    if stacked is not None:
        raise InvalidInputError(
            f"'{label}' stacks more than {MAX_COMBINING_RUN} combining marks on one letter"
            f" (position {stacked} after NFC)"
        )
    return text


_JSON_STRUCTURE = re.compile(rb'[\[\]{}"]')
_JSON_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def check_json_depth(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON text nested deeper than ``max_depth`` arrays and objects.

    A linear scan (strings skipped, escapes honoured) that runs before :func:`json.loads`,
    whose recursive parser would otherwise hit Python's recursion limit on hostile input.
    Malformed JSON passes through untouched: the parser reports it.
    """
    depth = 0
    position = 0
    search = _JSON_STRUCTURE.search
    while True:
        found = search(data, position)
        if found is None:
            return
        token = found.group()
        position = found.end()
        if token == b'"':
            rest = _JSON_STRING_REST.match(data, position)
            if rest is None:
                return  # an unterminated string: json.loads says so
            position = rest.end()
        elif token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise InvalidInputError(
                    f"the JSON document is nested more than {max_depth} levels deep"
                )
        else:
            depth -= 1
