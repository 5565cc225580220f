"""Money: every amount is a whole number of minor units (fen for CNY); text only at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 exponents other than the usual 2 (yuan and fen), for currencies seen here.
MINOR_DIGITS = {"JPY": 0, "KRW": 0}
# Input bounds: `1E+999990` must be refused at once, not expanded (seconds of CPU, then a crash).
MAX_AMOUNT_TEXT = 24
MAX_AMOUNT_DIGITS = 12  # powers of ten: a trillion yuan is not a library fee


def exponent(currency: str) -> int:
    return MINOR_DIGITS.get(currency.upper(), 2)


def format_amount(amount: int, currency: str) -> str:
    """`1250` fen → `12.50`; `-5` → `-0.05`; JPY has no minor unit: `300` → `300`."""
    digits = exponent(currency)
    if digits == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{part:0{digits}d}"


def format_money(amount: int, currency: str) -> str:
    return f"{format_amount(amount, currency)} {currency}"


def parse_amount(text: str, currency: str) -> int:
    """`12.5` yuan → `1250` fen. Raises ValueError for text that is not an exact amount."""
    if len(text.strip()) > MAX_AMOUNT_TEXT:
        raise ValueError(f"{text[:MAX_AMOUNT_TEXT]!r}… is not an amount")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite() or value.adjusted() > MAX_AMOUNT_DIGITS:
        raise ValueError(f"{text!r} is not an amount")
    minor = value.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than {currency} allows")
    return int(minor)
