"""Entropy coders of the compressed file's symbol streams (plug-ins, conf/encode/coder/*.yaml).

A coder lives in ``compression/coders/<name>.py`` and exports ``CODER``, a subclass of
``EntropyCoder`` whose ``name`` is ``<name>``. The file records that name, and a reader decodes
a stream only with the coder of that name (``coder_named``): a file written by a coder this
version lacks is refused with a clear message, never decoded with another code.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CodedStream:
    """One coded stream as the file stores it, in this order: ``table``, (codebook), ``payload``, ``offsets``.

    table:   what the decoder needs to know the code (code lengths, frequencies, ...).
    payload: the coded bits, zero-padded to a whole byte.
    offsets: where chunks of ``chunk`` symbols start (for parallel decoding); may be empty.
    n_bits:  the payload's real length in bits.
    """

    table: bytes
    payload: bytes
    offsets: bytes
    n_bits: int


class EntropyCoder:
    """Codes a stream of symbols in ``0 .. alphabet-1`` losslessly."""

    name = ""

    def encode(self, symbols: np.ndarray, alphabet: int, chunk: int) -> CodedStream:
        raise NotImplementedError

    def present(self, table: bytes, alphabet: int) -> np.ndarray:
        """Bool per symbol: may occur in the stream (the file stores codebook entries only for these)."""
        raise NotImplementedError

    def decode(self, stream: CodedStream, count: int, alphabet: int, chunk: int) -> np.ndarray:
        """The ``count`` symbols; raises ValueError on any inconsistency."""
        raise NotImplementedError

    def cost_bits(self, symbols: np.ndarray, alphabet: int) -> int:
        """Payload plus table bits of coding ``symbols`` (for choosing a gap width); no offsets."""
        s = self.encode(np.asarray(symbols), alphabet, max(1, len(symbols)))
        return s.n_bits + 8 * len(s.table)


_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def coder_named(name: str) -> EntropyCoder:
    """The coder a file names; ValueError if this version has none of that name."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"bad coder name {name!r}")
    try:
        cls = importlib.import_module(f"compression.coders.{name}").CODER
    except (ImportError, AttributeError):
        raise ValueError(f"its streams were written by the {name!r} coder, which this version does not have "
                         f"(no compression/coders/{name}.py); decode it with the version that wrote it") from None
    if not (isinstance(cls, type) and issubclass(cls, EntropyCoder) and cls.name == name):
        raise ValueError(f"compression/coders/{name}.py does not export a coder named {name!r}")
    return cls()
