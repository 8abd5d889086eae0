"""Usage errors that name the sub-command they belong to, with a did-you-mean for a typo.

argparse reports an unknown option of a sub-command from the top-level parser, with the
top-level usage; :func:`reject_unknown` reports it from the sub-command's own parser instead,
with its usage and the closest option it has.

Example::

    >>> closest("--taget", ["--target", "--timeout", "--seed"])
    '--target'
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word`` (its ``=value`` ignored), or None when none is close."""
    matches = difflib.get_close_matches(word.split("=", 1)[0], list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the deepest sub-command ``args`` went into (``d1sim runs list`` -> list's)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, sub.dest, None) if sub is not None else None
        if sub is None or chosen not in sub.choices:
            return parser
        parser = sub.choices[chosen]


def reject_unknown(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: Sequence[str]) -> None:
    """Exit 2 through the sub-command's parser, naming each unknown word and a likely option."""
    owner = innermost(parser, args)
    options = [s for action in owner._actions for s in action.option_strings]
    notes = []
    for word in extras:
        guess = closest(word, options) if word.startswith("-") else None
        notes.append(f"{word} (did you mean {guess}?)" if guess else word)
    owner.error("unrecognized arguments: " + ", ".join(notes))
