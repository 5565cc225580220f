"""CQL tokens: parentheses, `/`, comparison symbols, quoted strings and bare words."""

from __future__ import annotations

from dataclasses import dataclass

SYMBOLS = ("==", "<>", "<=", ">=", "=", "<", ">", "(", ")", "/")
WORD_STOP = set(' \t\r\n\f\v()=<>/"')


class CQLSyntaxError(Exception):
    """A query that is not CQL. `kind`: syntax | too_long | too_deep. `position` is 0-based."""

    def __init__(self, message: str, position: int, kind: str = "syntax") -> None:
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # symbol | word | string | end
    text: str  # the symbol, the word as written, or the string's value
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    length = len(text)
    while i < length:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            start = i
            i += 1
            value: list[str] = []
            while True:
                if i >= length:
                    raise CQLSyntaxError("unterminated quoted string", start)
                ch = text[i]
                if ch == "\\":
                    if i + 1 >= length:
                        raise CQLSyntaxError("a backslash at the end of the query", i)
                    following = text[i + 1]
                    # \" is a quote inside the string; other escapes (\* \? \^ \\) stay as
                    # written so masking characters remain distinguishable for the caller.
                    value.append('"' if following == '"' else "\\" + following)
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    break
                value.append(ch)
                i += 1
            tokens.append(Token("string", "".join(value), start))
            continue
        for symbol in SYMBOLS:
            if text.startswith(symbol, i):
                tokens.append(Token("symbol", symbol, i))
                i += len(symbol)
                break
        else:
            start = i
            while i < length and text[i] not in WORD_STOP:
                # In a bare word a backslash escapes the next character only when that could be
                # part of the word anyway (\* \? \^): it never swallows a ")" or a quote.
                escapes = text[i] == "\\" and i + 1 < length and text[i + 1] not in WORD_STOP
                i += 2 if escapes else 1
            tokens.append(Token("word", text[start:i], start))
    tokens.append(Token("end", "", length))
    return tokens
