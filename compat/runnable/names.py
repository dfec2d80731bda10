"""Random, readable names: ``get_random_name()`` gives ``adjective-surname`` (Docker style).

Applications written for the reference build run ids from these
(``f"{names.get_random_name()}-{datetime.now():%H%M%S}"``); runs started without an id get one
in the same shape (see :func:`run_id`). The word lists are this package's own: an adjective
of temperament and the surname of a scientist or engineer. Names are drawn with
:class:`random.SystemRandom`, so forking or seeding ``random`` never makes two processes draw
the same sequence.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import secrets

__all__ = ["ADJECTIVES", "SURNAMES", "get_random_name", "run_id"]

ADJECTIVES = (
    "agile", "amused", "bold", "brave", "bright", "calm", "candid", "careful", "cheerful",
    "clever", "cool", "curious", "daring", "deft", "eager", "earnest", "fair", "fearless",
    "fond", "frank", "gallant", "gentle", "glad", "graceful", "happy", "hardy", "honest",
    "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "merry", "mindful",
    "modest", "nimble", "noble", "patient", "peaceful", "placid", "plucky", "polite",
    "proud", "quick", "quiet", "radiant", "ready", "restful", "serene", "sharp", "shy",
    "sincere", "smart", "snappy", "solid", "spry", "steady", "stoic", "sunny", "swift",
    "tender", "thoughtful", "tidy", "tranquil", "trusty", "upbeat", "valiant", "vivid",
    "warm", "wise", "witty", "zealous",
)  # fmt: skip

SURNAMES = (
    "agnesi", "babbage", "banach", "bardeen", "bohr", "boole", "born", "bose", "cantor",
    "carson", "cauchy", "chandra", "curie", "darwin", "dijkstra", "dirac", "euler",
    "faraday", "fermat", "fermi", "feynman", "franklin", "galois", "gauss", "germain",
    "goodall", "hamilton", "hawking", "heisenberg", "hertz", "hilbert", "hodgkin", "hopper",
    "hubble", "huygens", "jackson", "johnson", "joule", "kepler", "knuth", "kovalevskaya",
    "lamarr", "laplace", "leavitt", "leibniz", "lovelace", "maxwell", "meitner", "mendel",
    "mirzakhani", "noether", "ohm", "pascal", "pasteur", "pauli", "planck", "poincare",
    "ramanujan", "riemann", "ritchie", "rubin", "rutherford", "sagan", "shannon", "somerville",
    "tesla", "thompson", "turing", "volta", "wiles", "wu", "yalow", "yonath", "zuse",
)  # fmt: skip

_random = random.SystemRandom()
_counter = itertools.count(1)


def get_random_name(sep: str = "-") -> str:
    """A random ``adjective<sep>surname``, e.g. ``"brave-noether"``."""
    return f"{_random.choice(ADJECTIVES)}{sep}{_random.choice(SURNAMES)}"


def run_id() -> str:
    """A new run id in the reference's shape, made unique: ``brave-noether-164233-3fa2c1``.

    The reference's ``adjective-surname-HHMM`` repeats within a minute often enough to collide
    under load; the seconds, random bits and a per-process counter keep this one unique.
    """
    stamp = dt.datetime.now().strftime("%H%M%S")
    return f"{get_random_name()}-{stamp}-{secrets.token_hex(2)}{next(_counter):x}"
