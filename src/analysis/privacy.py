"""Personal data (PII) stay out of everything a run writes.

The analysis needs no names, e-mail addresses, phone numbers or postal addresses, so they never
reach the run folder: not the validated tables (``data/``), not the set-aside rows
(``set_aside/``), not the pages, not the exports. Personal data are recognised three ways:

1. **by contract**: columns mapped to ``name``, ``email``, ``phone`` or ``customer_name``, and
   every column the config lists under ``pii_columns`` (a contract name or the user's own name);
2. **by column name**: columns the contract does not use whose name says e-mail, phone or mobile,
   a person's name, a postal address or an identity number (``Email Address``, ``mobile``,
   ``buyer_email``, ``Phone Number``, ``street``, ``Customer Name``; not ``product_name``);
3. **by value**: columns the contract does not use whose values contain e-mail addresses, or
   are mostly phone numbers.

Ids are kept, as the analysis joins on them, but an id that looks like an e-mail address or a
phone number is replaced by a pseudonym: ``c_`` (customer ids; ``x_`` for order and product
ids) and 16 hex digits of HMAC-SHA-256 keyed with the run config's ``name``. The same id gets
the same pseudonym in every table and every run of that config (so runs can be compared), but
the address cannot be read back from it. Pseudonyms are pseudonymous, not anonymous: anyone who
knows the config name and guesses an address can check the guess.

Text values of columns the analysis uses (product names, cities, ...) that contain an e-mail
address have the address replaced by ``[e-mail removed]``.

The ledger records what was left out by column *name* and counts, never values
(:func:`ledger_notes`). An export for a CRM that needs contact details is a separate, opt-in
step on the user's side of this boundary; :func:`find_pii_columns` says which columns it would be.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

import pandas as pd

#: Contract columns that are personal data whatever the config says.
CONTRACT_PII = ("name", "email", "phone", "customer_name")
#: Replaces an e-mail address found inside a text value.
EMAIL_REMOVED = "[e-mail removed]"

EMAIL = re.compile(r"[\w.%+'!#$&*/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
# A whole value that is a phone number: digits with the usual punctuation, 7 to 15 digits,
# written with a leading "+" or with separators ("555-0101", "(020) 7946 0958", "+44 20 7946 0958").
_PHONE_SHAPE = re.compile(r"\+?[\d\s().\-/]+")
_PHONE_WRITTEN = re.compile(r"\+\d|\(\d|\d[\s.\-/()]+\d")
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_DECIMAL = re.compile(r"[+-]?\d+(?:\.\d+)?")

# Column names: the name split into lower-case words ("EmailAddress" -> email, address).
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_EMAIL_WORDS = {"email", "emails", "mail", "emailaddress"}
_PHONE_WORDS = {"phone", "phones", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "msisdn", "whatsapp", "landline"}
_ADDRESS_WORDS = {"address", "addr", "street", "streetname", "house", "housenumber", "apartment", "apt"}
_IDENTITY_WORDS = {"ssn", "passport", "iban", "password", "dob", "birthdate", "creditcard", "cardnumber"}
_NAME_ALONE = {"name", "names", "fullname", "firstname", "lastname", "surname", "forename", "givenname",
               "familyname", "middlename", "maidenname", "username", "contactname", "contactperson", "contact"}
# "<word> name" is a person's name for these words ("Customer Name", "buyer_name"), not for
# "product name" or "brand name".
_PERSON_WORDS = {"customer", "client", "buyer", "contact", "user", "member", "first", "last", "full", "given",
                 "family", "middle", "maiden", "account", "holder", "cardholder", "recipient", "shipping",
                 "billing", "person", "owner", "guest", "patient", "employee", "sur", "fore", "nick", "display"}
_BIRTH_DATE = ({"birth", "date"}, {"date", "of", "birth"})
# Words that make "email"/"mobile"/"phone" a measure or flag about contact, not the contact
# itself ("email_opens", "mobile_app_sessions", "phone_opt_in"); their values are still checked.
_ABOUT_CONTACT = {"open", "opens", "opened", "click", "clicks", "clicked", "sent", "opt", "optin", "optout", "consent",
                  "rate", "count", "campaign", "campaigns", "subscribed", "unsubscribed", "bounce", "bounced",
                  "verified", "flag", "type", "pref", "preference", "channel", "app", "device", "os", "session",
                  "sessions", "calls", "share", "orders", "visits", "domain"}


def _words(column: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(str(column))]


def column_name_kind(column: str) -> str | None:
    """What personal data a column's *name* announces: ``"e-mail"``, ``"phone"``, ``"name"``,
    ``"address"``, ``"identity"``, or None.

    Examples
    --------
    >>> [column_name_kind(c) for c in ("Email Address", "mobile", "buyer_email", "Phone Number", "street", "CustomerName")]
    ['e-mail', 'phone', 'e-mail', 'phone', 'address', 'name']
    >>> [column_name_kind(c) for c in ("product_name", "brand name", "customer_id", "email_open_rate", "mobile_app_sessions")]
    [None, None, None, None, None]
    """
    words = set(_words(column))
    compact = "".join(_words(column))
    if not words:
        return None
    measure = bool(_ABOUT_CONTACT & words)
    if not measure and ({"e", "mail"} <= words or "email" in compact or _EMAIL_WORDS & words):
        return "e-mail"
    if not measure and (_PHONE_WORDS & words or "phone" in compact):
        return "phone"
    if _ADDRESS_WORDS & words or "address" in compact or "street" in compact:
        return "address"
    if _IDENTITY_WORDS & words or compact in {"dateofbirth", "birthdate", "socialsecuritynumber"} or any(
        b <= words for b in _BIRTH_DATE
    ):
        return "identity"
    if compact in _NAME_ALONE or any(compact.endswith(n) for n in ("firstname", "lastname", "surname", "fullname", "username")):
        return "name"
    if "name" in words and _PERSON_WORDS & words:
        return "name"
    return None


def email_mask(values: pd.Series) -> pd.Series:
    """True where a value contains an e-mail address."""
    text = values.astype("string")
    has_at = text.str.contains("@", regex=False).fillna(False).astype(bool)
    out = pd.Series(False, index=values.index)
    if has_at.any():
        out[has_at] = text[has_at].str.contains(EMAIL).fillna(False).astype(bool)
    return out


def phone_mask(values: pd.Series) -> pd.Series:
    """True where a whole value is written like a phone number (not a date, not a plain number)."""
    text = values.astype("string").str.strip()
    out = text.str.fullmatch(_PHONE_SHAPE).fillna(False).astype(bool)
    if not out.any():
        return out
    candidates = text[out]  # digits and phone punctuation only: usually few values
    digits = candidates.str.count(r"\d")
    written = candidates.str.contains(_PHONE_WRITTEN).fillna(False).astype(bool)
    other = candidates.str.fullmatch(_DATE).fillna(False).astype(bool) | candidates.str.fullmatch(_DECIMAL).fillna(False).astype(bool)
    out[out] = (digits.between(7, 15) & written & ~other).astype(bool)
    return out


def contact_mask(values: pd.Series) -> pd.Series:
    """True where a value is (or contains) an e-mail address or is a phone number."""
    return email_mask(values) | phone_mask(values)


def looks_like_contact(value: object) -> bool:
    """One value: an e-mail address or a phone number?"""
    return bool(contact_mask(pd.Series([value], dtype=object)).iloc[0]) if value is not None else False


def column_value_kind(values: pd.Series, phone_share: float = 0.5) -> str | None:
    """What personal data a column's *values* hold: ``"e-mail"`` when any value contains an
    e-mail address, ``"phone"`` when at least ``phone_share`` of the filled values are phone
    numbers, else None."""
    filled = values.dropna()
    filled = filled[filled.astype("string").str.strip() != ""]
    if filled.empty:
        return None
    if email_mask(filled).any():
        return "e-mail"
    sample = filled.sample(n=5000, random_state=0) if len(filled) > 5000 else filled
    return "phone" if phone_mask(sample).mean() >= phone_share else None


def contract_pii(pii_columns: list[str] | tuple[str, ...] = ()) -> set[str]:
    """Contract (and user) column names that are personal data: :data:`CONTRACT_PII` and the
    config's ``pii_columns``."""
    return set(CONTRACT_PII) | set(pii_columns)


def find_pii_columns(original: pd.DataFrame, mapping: dict[str, str], pii_columns: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """User columns of one source that are personal data, with why (``{column: reason}``).

    Columns mapped to a contract column the analysis uses are not judged by name or value (the
    customer id is pseudonymised instead, see :func:`pseudonymise`); columns mapped to a PII
    contract column, listed in ``pii_columns``, or not mapped at all are.

    Parameters
    ----------
    original : DataFrame
        The source's rows with the user's column names (``io.RawTable.original``).
    mapping : dict
        Contract name -> user column (``io.RawTable.mapping``).
    pii_columns : list of str
        The config's ``pii_columns`` (contract or user names).
    """
    pii = contract_pii(pii_columns)
    used = {user: contract for contract, user in mapping.items()}
    found: dict[str, str] = {}
    for column in original.columns:
        contract = used.get(column)
        if contract == "customer_id":
            continue
        if contract in pii:
            found[column] = f"contract column '{contract}'"
        elif column in pii:
            found[column] = "listed in pii_columns"
        elif contract is not None:
            continue
        elif kind := column_name_kind(column):
            found[column] = f"name says {kind}"
        elif kind := column_value_kind(original[column]):
            found[column] = f"values look like {kind}"
    return found


def pseudonym(value: str, key: str, prefix: str = "c_") -> str:
    """``prefix`` + 16 hex digits of HMAC-SHA-256 of ``value`` keyed with ``key``.

    Examples
    --------
    >>> pseudonym("ann@example.com", "sample")
    'c_a835d807a8d7fb93'
    """
    return prefix + hmac.new(key.encode("utf-8"), str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def pseudonymise(values: pd.Series, key: str, prefix: str = "c_") -> tuple[pd.Series, int]:
    """Ids that look like e-mail addresses or phone numbers replaced by :func:`pseudonym`.

    Other ids (and missing ones) are returned as they are. Returns the ids and how many values
    were replaced.
    """
    distinct = pd.Series(pd.unique(values.dropna()), dtype=object)  # ids repeat: judge each once
    personal_ids = distinct[contact_mask(distinct).to_numpy()]
    if personal_ids.empty:
        return values, 0
    table = {v: pseudonym(str(v), key, prefix) for v in personal_ids}
    personal = values.isin(list(table))
    out = values.astype(object).copy()
    out[personal] = values[personal].map(table)
    return out, int(personal.sum())


def scrub_emails(values: pd.Series) -> tuple[pd.Series, int]:
    """Text values with every e-mail address replaced by :data:`EMAIL_REMOVED`; and how many changed."""
    hit = email_mask(values)
    if not hit.any():
        return values, 0
    out = values.astype(object).copy()
    out[hit] = values[hit].astype(str).str.replace(EMAIL, EMAIL_REMOVED, regex=True)
    return out, int(hit.sum())


def text_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding text (object, string or category dtype)."""
    return [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c].dtype) or pd.api.types.is_string_dtype(frame[c].dtype)
            or isinstance(frame[c].dtype, pd.CategoricalDtype)]


@dataclass
class PiiFindings:
    """What was kept out of one table, by column name and count (never values).

    ``columns``: user column -> why it is personal data; ``filled``: user column -> how many
    rows had a value in it; ``pseudonymised_ids`` and ``scrubbed_values``: values replaced.
    """

    table: str
    columns: dict[str, str] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)
    pseudonymised_ids: int = 0
    scrubbed_values: int = 0

    @classmethod
    def of_source(cls, table: str, original: pd.DataFrame, mapping: dict[str, str],
                  pii_columns: list[str] | tuple[str, ...] = ()) -> PiiFindings:
        """Find the personal-data columns of one source (see :func:`find_pii_columns`)."""
        columns = find_pii_columns(original, mapping, pii_columns)
        filled = {c: int(original[c].notna().sum()) for c in columns}
        return cls(table, columns, filled)

    def ledger_notes(self) -> list[tuple[str, int]]:
        """``(note, count)`` pairs for the ledger; each note leads with what a reader needs
        (tables of notes are often cut at 50 characters)."""
        notes = [(f"column '{column}' left out: personal data ({why})", self.filled.get(column, 0))
                 for column, why in self.columns.items()]
        if self.pseudonymised_ids:
            note = ("ids replaced by pseudonyms: they look like e-mail addresses or phone numbers "
                    "(c_ or x_ + 16 hex digits, keyed by the config name)")
            notes.append((note, self.pseudonymised_ids))
        if self.scrubbed_values:
            notes.append((f"e-mail addresses cut out of text values (shown as '{EMAIL_REMOVED}')", self.scrubbed_values))
        return notes
