"""Finite normal-form games: payoff tensors, validation, and the JSON / Gambit ``.nfg`` formats.

A game with N players is stored the way OpenSpiel's PSRO stores a meta-game and nashpy stores a
bimatrix: one payoff tensor per player, each with one axis per player, so
``payoffs[i][a_0, ..., a_{N-1}]`` is player i's payoff when player k plays action ``a_k``. For two
players ``payoffs = (A, B)`` with rows indexed by the first player's action in both matrices
(nashpy's ``Game(A, B)`` convention; the column player's "own" matrix is ``B.T``).

File formats:

* JSON: ``{"players": ["Row", "Column"], "payoffs": [A, B]}`` with each payoff a nested list of
  numbers of the same shape; optional ``"actions"`` (a list of action names per player) and
  ``"title"``.
* Gambit ``.nfg`` (both the payoff and the outcome versions of Gambit's strategic-form format),
  read by the parser in this module. pygambit is GPL and is not used here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from varl._checks import FloatArray, as_float_array

__all__ = ["NormalFormGame", "as_game", "parse_nfg"]


class NormalFormGame:
    """A finite N-player game in normal (strategic) form.

    Args:
        payoffs: One payoff tensor per player, N >= 2 of them, each of shape
            ``[n_0, ..., n_{N-1}]`` (one axis per player, ``n_k >= 1`` actions for player k),
            all of the same shape and finite.
        players: Player names (default ``"Player 1"``, ...).
        actions: Action names per player (default ``"1"``, ``"2"``, ... as in Gambit).
        title: Free-text title (kept by the file formats).

    Raises:
        TypeError: If a payoff tensor is not numeric.
        ValueError: On ragged or mismatched tensors, a wrong number of axes, NaN/inf payoffs, or
            name lists of the wrong length.

    Example:
        >>> game = NormalFormGame.from_bimatrix([[4, 0], [3, 3]], [[4, 3], [0, 3]])
        >>> game.shape, game.num_players
        ((2, 2), 2)
    """

    def __init__(
        self,
        payoffs: Sequence[ArrayLike],
        *,
        players: Sequence[str] | None = None,
        actions: Sequence[Sequence[str]] | None = None,
        title: str = "",
    ) -> None:
        if isinstance(payoffs, np.ndarray) and payoffs.ndim >= 1:
            payoffs = list(payoffs)
        if not isinstance(payoffs, Sequence) or isinstance(payoffs, str):
            raise TypeError(
                f"payoffs: expected a sequence of payoff tensors, got {type(payoffs).__name__}"
            )
        n_players = len(payoffs)
        if n_players < 2:
            raise ValueError(
                f"payoffs: expected one tensor per player for >= 2 players, got {n_players}"
            )
        tensors = [as_float_array(p, f"payoffs[{i}]") for i, p in enumerate(payoffs)]
        shape = tensors[0].shape
        for i, tensor in enumerate(tensors):
            if tensor.ndim != n_players:
                raise ValueError(
                    f"payoffs[{i}]: expected one axis per player ({n_players}), got shape "
                    f"{tensor.shape}"
                )
            if tensor.shape != shape:
                raise ValueError(
                    f"payoffs[{i}]: shape {tensor.shape} differs from payoffs[0] shape {shape}"
                )
            if 0 in tensor.shape:
                raise ValueError(f"payoffs[{i}]: every player needs >= 1 action, got {shape}")
            if not np.all(np.isfinite(tensor)):
                raise ValueError(f"payoffs[{i}]: contains NaN or inf")
        frozen = []
        for tensor in tensors:
            copy = np.array(tensor, dtype=np.float64)
            copy.setflags(write=False)
            frozen.append(copy)
        self.payoffs: tuple[FloatArray, ...] = tuple(frozen)
        self.players: tuple[str, ...] = _names(
            players, n_players, "players", [f"Player {i + 1}" for i in range(n_players)]
        )
        if actions is None:
            self.actions: tuple[tuple[str, ...], ...] = tuple(
                tuple(str(k + 1) for k in range(n)) for n in shape
            )
        else:
            if len(actions) != n_players:
                raise ValueError(f"actions: expected {n_players} lists, got {len(actions)}")
            self.actions = tuple(
                _names(a, n, f"actions[{i}]", [])
                for i, (a, n) in enumerate(zip(actions, shape, strict=True))
            )
        self.title = str(title)

    @property
    def num_players(self) -> int:
        """Number of players N."""
        return len(self.payoffs)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of actions of each player, ``(n_0, ..., n_{N-1})``."""
        return tuple(int(n) for n in self.payoffs[0].shape)

    @classmethod
    def from_bimatrix(
        cls,
        A: ArrayLike,
        B: ArrayLike | None = None,
        *,
        players: Sequence[str] | None = None,
        actions: Sequence[Sequence[str]] | None = None,
        title: str = "",
    ) -> NormalFormGame:
        """Two-player game from the row player's matrix ``A [n, m]`` and the column player's
        ``B [n, m]`` (rows = row player's actions in both); ``B`` None means zero-sum, ``B = -A``.
        ``players``, ``actions`` and ``title`` are as in the constructor.
        """
        a = as_float_array(A, "A")
        b = -a if B is None else as_float_array(B, "B")
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"A, B: expected 2-D matrices, got shapes {a.shape} and {b.shape}")
        if a.shape != b.shape:
            raise ValueError(f"B: shape {b.shape} differs from A shape {a.shape}")
        return cls([a, b], players=players, actions=actions, title=title)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "game") -> NormalFormGame:
        """Game from the JSON object form ``{"players": [...], "payoffs": [...]}``.

        Raises:
            ValueError: If a key is missing or a value has the wrong form (the message starts
                with ``source``).
        """
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"players", "payoffs", "actions", "title"}
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}")
        for key in ("players", "payoffs"):
            if key not in data:
                raise ValueError(f"{source}: missing key {key!r}")
        players = data["players"]
        if not isinstance(players, list) or not all(isinstance(p, str) for p in players):
            raise ValueError(f"{source}: 'players' must be a list of names")
        payoffs = data["payoffs"]
        if not isinstance(payoffs, list) or len(payoffs) != len(players):
            raise ValueError(
                f"{source}: 'payoffs' must be a list with one tensor per player ({len(players)})"
            )
        try:
            return cls(
                payoffs,
                players=players,
                actions=data.get("actions"),
                title=str(data.get("title", "")),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from exc

    @classmethod
    def from_json(cls, path: str | Path) -> NormalFormGame:
        """Reads a game from a JSON file (see the module docstring for the format)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_nfg(cls, path: str | Path) -> NormalFormGame:
        """Reads a game from a Gambit ``.nfg`` file (see :func:`parse_nfg`)."""
        path = Path(path)
        return parse_nfg(path.read_text(encoding="utf-8"), source=str(path))

    @classmethod
    def load(cls, path: str | Path) -> NormalFormGame:
        """Reads a ``.json`` or ``.nfg`` file, chosen by the file's suffix."""
        suffix = Path(path).suffix.lower()
        if suffix == ".json":
            return cls.from_json(path)
        if suffix == ".nfg":
            return cls.from_nfg(path)
        raise ValueError(f"path: expected a .json or .nfg file, got {str(path)!r}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form, readable by :meth:`from_dict`."""
        return {
            "title": self.title,
            "players": list(self.players),
            "actions": [list(a) for a in self.actions],
            "payoffs": [p.tolist() for p in self.payoffs],
        }

    def to_nfg(self) -> str:
        """The game in Gambit's payoff-version ``.nfg`` format (exact for float payoffs)."""
        head = (
            f"NFG 1 R {_quote(self.title)} {{ {' '.join(_quote(p) for p in self.players)} }}\n"
            "{ "
            + " ".join("{ " + " ".join(_quote(a) for a in acts) + " }" for acts in self.actions)
            + " }\n\n"
        )
        # Profiles in Gambit's order (first player's action changes fastest), payoffs per profile.
        flat = np.stack([p.reshape(-1, order="F") for p in self.payoffs], axis=1)
        body = "\n".join(" ".join(_number(v) for v in row) for row in flat)
        return head + body + "\n"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NormalFormGame):
            return NotImplemented
        return (
            self.players == other.players
            and self.actions == other.actions
            and self.title == other.title
            and all(np.array_equal(a, b) for a, b in zip(self.payoffs, other.payoffs, strict=True))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value type: not hashable

    def __repr__(self) -> str:
        return f"NormalFormGame(players={list(self.players)}, shape={self.shape})"


def as_game(game: NormalFormGame | Sequence[ArrayLike]) -> NormalFormGame:
    """Returns ``game`` itself, or a :class:`NormalFormGame` built from a list of payoff tensors
    (OpenSpiel's meta-game form), so every solver accepts either."""
    if isinstance(game, NormalFormGame):
        return game
    return NormalFormGame(game)


def _names(value: Sequence[str] | None, n: int, name: str, default: list[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    if isinstance(value, str) or len(value) != n:
        raise ValueError(f"{name}: expected {n} names, got {value!r}")
    return tuple(str(v) for v in value)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


# --- Gambit .nfg parser -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "{", "}", "str", "num", "word"
    text: str
    line: int


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:/\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _tokens(text: str, source: str) -> Iterator[_Token]:
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace() or ch == ",":
            i += 1
        elif ch in "{}":
            yield _Token(ch, ch, line)
            i += 1
        elif ch == '"':
            start_line, j, chars = line, i + 1, []
            while True:
                if j >= n:
                    raise ValueError(f"{source} line {start_line}: unterminated string")
                c = text[j]
                if c == "\\" and j + 1 < n:
                    chars.append(text[j + 1])
                    j += 2
                    continue
                if c == '"':
                    break
                if c == "\n":
                    line += 1
                chars.append(c)
                j += 1
            yield _Token("str", "".join(chars), start_line)
            i = j + 1
        else:
            match = _NUMBER.match(text, i) or _WORD.match(text, i)
            if match is None or match.end() == i:
                raise ValueError(f"{source} line {line}: unexpected character {ch!r}")
            kind = "num" if match.re is _NUMBER else "word"
            end = match.end()
            if end < n and not (text[end].isspace() or text[end] in '{},"'):
                bad = text[i : end + 1]
                raise ValueError(f"{source} line {line}: malformed token {bad!r}")
            yield _Token(kind, match.group(), line)
            i = end


class _Reader:
    """A cursor over the tokens that reports the line of whatever it did not expect."""

    def __init__(self, text: str, source: str) -> None:
        self.tokens = list(_tokens(text, source))
        self.pos = 0
        self.source = source

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def error(self, expected: str, token: _Token | None) -> ValueError:
        if token is None:
            line = self.tokens[-1].line if self.tokens else 1
            return ValueError(f"{self.source} line {line}: expected {expected}, got end of file")
        return ValueError(
            f"{self.source} line {token.line}: expected {expected}, got {token.text!r}"
        )

    def take(self, kind: str, expected: str) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind:
            raise self.error(expected, token)
        self.pos += 1
        return token

    def number(self, expected: str) -> float:
        token = self.take("num", expected)
        value = float(Fraction(token.text)) if "/" in token.text else float(token.text)
        if not math.isfinite(value):
            raise ValueError(f"{self.source} line {token.line}: {token.text!r} is not finite")
        return value

    def integer(self, expected: str) -> tuple[int, _Token]:
        token = self.take("num", expected)
        if not re.fullmatch(r"[+-]?\d+", token.text):
            raise self.error(expected, token)
        return int(token.text), token


def parse_nfg(text: str, *, source: str = "<nfg>") -> NormalFormGame:
    """Parses Gambit's strategic-form (``.nfg``) text into a :class:`NormalFormGame`.

    Both versions of the format are read. The header is
    ``NFG 1 R "title" { "P1" "P2" ... } STRATEGIES [ "comment" ]`` where STRATEGIES is either a
    count per player (``{ 3 2 }``) or a name list per player (``{ { "a" "b" } { "x" "y" } }``).
    The payoff version then lists, for every pure profile with the first player's strategy
    changing fastest, one payoff per player. The outcome version lists outcomes
    ``{ "name" u_1 ... u_N }`` inside braces followed by one outcome number per profile (same
    order; 0 is the null outcome that pays 0 to everyone). Numbers may be integers, decimals,
    exponents or rationals such as ``3/2``; commas count as whitespace.

    Args:
        text: The file's contents.
        source: File name used in error messages.

    Returns:
        The game, with Gambit's player and strategy names.

    Raises:
        ValueError: On any malformed input, with the line number of the offending token.
    """
    r = _Reader(text, source)
    magic = r.take("word", "'NFG'")
    if magic.text != "NFG":
        raise r.error("'NFG'", magic)
    version, token = r.integer("format version 1")
    if version != 1:
        raise r.error("format version 1", token)
    kind = r.take("word", "'R' or 'D'")
    if kind.text not in ("R", "D"):
        raise r.error("'R' or 'D'", kind)
    title = r.take("str", "a quoted title").text
    r.take("{", "'{' opening the player list")
    players: list[str] = []
    while (tok := r.peek()) is not None and tok.kind == "str":
        players.append(tok.text)
        r.pos += 1
    r.take("}", "a quoted player name or '}'")
    if len(players) < 2:
        raise ValueError(f"{source} line {r.tokens[r.pos - 1].line}: expected >= 2 players")
    r.take("{", "'{' opening the strategy list")
    counts: list[int] = []
    names: list[list[str]] = []
    for i in range(len(players)):
        tok = r.peek()
        if tok is not None and tok.kind == "{":
            r.pos += 1
            group: list[str] = []
            while (t := r.peek()) is not None and t.kind == "str":
                group.append(t.text)
                r.pos += 1
            r.take("}", "a quoted strategy name or '}'")
            if not group:
                raise ValueError(f"{source} line {tok.line}: player {i + 1} has no strategies")
            counts.append(len(group))
            names.append(group)
        else:
            count, tok = r.integer(f"the strategy count of player {i + 1}")
            if count < 1:
                raise ValueError(f"{source} line {tok.line}: strategy counts must be >= 1")
            counts.append(count)
            names.append([str(k + 1) for k in range(count)])
    r.take("}", f"'}}' closing the strategies of {len(players)} players")
    if (tok := r.peek()) is not None and tok.kind == "str":
        r.pos += 1  # optional comment
    n_profiles = math.prod(counts)
    n_players = len(players)
    tok = r.peek()
    if tok is not None and tok.kind == "{":
        r.pos += 1
        outcomes: list[list[float]] = [[0.0] * n_players]  # outcome 0: the null outcome
        while (t := r.peek()) is not None and t.kind == "{":
            r.pos += 1
            r.take("str", "a quoted outcome name")
            outcomes.append(
                [r.number(f"payoff {k + 1} of outcome {len(outcomes)}") for k in range(n_players)]
            )
            r.take("}", f"'}}' after the {n_players} payoffs of outcome {len(outcomes) - 1}")
        r.take("}", "'{' opening an outcome or '}' closing the outcome list")
        flat = np.empty((n_profiles, n_players))
        for k in range(n_profiles):
            index, t = r.integer(f"the outcome number of profile {k + 1} of {n_profiles}")
            if not 0 <= index < len(outcomes):
                raise ValueError(
                    f"{source} line {t.line}: outcome {index} does not exist "
                    f"(there are {len(outcomes) - 1})"
                )
            flat[k] = outcomes[index]
    else:
        values = [
            r.number(f"payoff {k % n_players + 1} of profile {k // n_players + 1} of {n_profiles}")
            for k in range(n_profiles * n_players)
        ]
        flat = np.asarray(values, dtype=np.float64).reshape(n_profiles, n_players)
    extra = r.peek()
    if extra is not None:
        raise r.error("end of file", extra)
    payoffs = [flat[:, i].reshape(counts, order="F") for i in range(n_players)]
    return NormalFormGame(payoffs, players=players, actions=names, title=title)
