"""The payment provider interface, and the built-in test provider.

A provider turns card details into a token: brand, last four digits, expiry and the provider's
own reference. Only the token is ever stored; the full number and the CVC stay in this call
(they are never logged, audited or written to the database).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.utils.module_loading import import_string

from config.errors import ValidationFailed


@dataclass(frozen=True)
class CardToken:
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    provider_ref: str

    @property
    def exp(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year}"


class CardDeclined(ValidationFailed):
    """The provider refused the card (the message never repeats the number)."""

    code = "card_declined"


class PaymentProvider:
    """Interface: a real provider (Stripe, Adyen…) implements tokenize() against its API."""

    name = "provider"

    def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        raise NotImplementedError

    def charge(
        self, *, payment_method, amount_cents: int, description: str, idempotency_key: str
    ) -> str:
        """Charge a stored card once per idempotency_key (a retry with the same key must not
        charge again); returns the charge reference, or raises CardDeclined."""
        raise NotImplementedError


def digits_only(number: str) -> str:
    return "".join(ch for ch in str(number or "") if ch.isdigit())


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "Mastercard"
    if number[:2] in {"34", "37"}:
        return "Amex"
    if number.startswith("6011") or number.startswith("65"):
        return "Discover"
    return "Card"


def check_card_fields(number: str, exp_month, exp_year, cvc: str, *, today: date | None = None):
    """Shape checks every provider shares; raises ValidationFailed naming the fields."""
    today = today or date.today()
    errors = {}
    if not luhn_ok(number):
        errors["number"] = "This card number is not valid."
    try:
        month, year = int(exp_month), int(exp_year)
    except (TypeError, ValueError):
        month = year = 0
    if year and year < 100:
        year += 2000
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        errors["exp_month"] = "Give the expiry month (1–12) and year."
    elif (year, month) < (today.year, today.month):
        errors["exp_month"] = "This card has expired."
    cvc = str(cvc or "").strip()
    wanted = 4 if number[:2] in {"34", "37"} else 3
    if not (cvc.isdigit() and len(cvc) == wanted):
        errors["cvc"] = f"The security code is {wanted} digits."
    if errors:
        raise ValidationFailed("Please check the card details.", fields=errors, code="invalid_card")
    return month, year


class TestProvider(PaymentProvider):
    """Accepts the standard test cards; any other number is declined, like a real sandbox."""

    name = "test"
    ACCEPTED = {
        "4242424242424242",  # Visa
        "5555555555554444",  # Mastercard
        "378282246310005",  # American Express
        "6011111111111117",  # Discover
        "4000000000000341",  # Visa that is stored, but whose charges are declined
    }
    DECLINED_ON_CHARGE = {"0341"}

    def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        number = digits_only(number)
        month, year = check_card_fields(number, exp_month, exp_year, cvc)
        if number not in self.ACCEPTED:
            raise CardDeclined(
                "The card was declined by the payment provider. Try another card.",
                fields={"number": "Card declined."},
            )
        # The reference is random: it must not be derivable from the number.
        return CardToken(
            brand=brand_of(number),
            last4=number[-4:],
            exp_month=month,
            exp_year=year,
            provider_ref=f"test_card_{secrets.token_hex(12)}",
        )

    def charge(
        self, *, payment_method, amount_cents: int, description: str, idempotency_key: str
    ) -> str:
        if payment_method.last4 in self.DECLINED_ON_CHARGE:
            raise CardDeclined(
                f"The {payment_method.brand} card ending {payment_method.last4} was declined.",
                fields={"payment_method": "Card declined."},
            )
        return f"test_charge_{secrets.token_hex(12)}"


def get_provider() -> PaymentProvider:
    """The configured provider (BILLING_PAYMENT_PROVIDER, a dotted path); the test one by default."""
    path = getattr(settings, "BILLING_PAYMENT_PROVIDER", None) or "billing.providers.TestProvider"
    return import_string(path)()
