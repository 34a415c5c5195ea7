"""What a bounce says: which message bounced, for whom, and for good or not.

``parse_bounce`` reads a delivery failure report, standard (RFC 3464
``multipart/report; report-type=delivery-status``) or not (the free text of
Postfix, qmail, Exim, sendmail, Exchange, Yahoo and friends, in several
languages and charsets), the JSON notification of a mail service (Amazon SES
through SNS, and the event records of other relays: ``service_notice``) or a
mailing-list manager's rejection (``list_notice_kind``), and returns a
``BounceInfo``. It never raises on odd input: what it cannot find is ``None``
or empty. The text helpers at the bottom are shared with ``classify``.

Pure: takes a standard-library ``email.message.Message``, touches nothing else.
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.policy
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from typing import Any

import charset_normalizer

TEXT_LIMIT = 64_000  # characters of a part we look at; bounces are short
FAILED_ACTIONS = frozenset({"failed"})
DELAYED_ACTIONS = frozenset({"delayed"})
SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})

# An address in free text. The look-behind starts a match only at the start of a
# word, which keeps the scan linear on long runs of letters (base64, garbage).
_ADDR = r"(?<![\w.+&-])\w[\w.+&-]*@[\w-]+(?:\.[\w-]+)+"
_ADDR_RE = re.compile(_ADDR)
_MESSAGE_ID_LINE = re.compile(r"^[> \t]*Message-ID:[ \t]*(.+)$", re.I | re.M)
_STATUS_CODE = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_STATUS_FIELD = re.compile(r"^\s*([245])(?:\.\d|\d\d\b)")
_SMTP_REPLY = re.compile(r"(?:^|[\s:(\"])([45])\d\d[\s-]", re.M)
_EXPANDED_FROM = re.compile(rf"<?({_ADDR})>?\s*\(expanded from:?\s*<?({_ADDR})>?\)", re.I)
_BARE_NAMES_HEADING = re.compile(
    r"(?:the following (?:recipients?|users?|address(?:es|\(es\))?)|delivered to the following)"
    r"\b[^\n]*:[ \t]*\n",
    re.I,
)
_HEADER_LINE = re.compile(
    r"^[ \t>]*(?:to|from|cc|subject|sent|date|reply-to|sender|message-id|in-reply-to"
    r"|references|return-path):",
    re.I,
)
_NOT_RECIPIENT = re.compile(r"^(?:postmaster|mailer-daemon|mdaemon|root|abuse)(?:$|[+@])", re.I)
_LIST_ROLE = re.compile(r"[._+-](?:request|admin|owner|bounces?)@", re.I)

# Where the notification ends and the returned copy of the original begins.
_ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "message/rfc822-headers", "text/rfc822-headers", "message/global"}
)
_COPY_MARKER = re.compile(
    r"^[ \t>]*(?:"
    r"[-=]{3,}+.*(?:copy of|original message|returned message|unsent message|"
    r"message headers?|rfc ?822|undelivered message)"
    r"|(?:this is a |here is a |below this line is a )?copy of (?:the|your) (?:original )?message"
    r"|original message (?:follows|as received|header)"
    r"|(?:the )?(?:header|headers) and (?:top|first) \d+ lines"
    r"|the first \d+ lines of your (?:original )?message"
    r"|old message:"
    r"|[-=]{3,}[ \t]*(?:元のメッセージ|元のメール|送信されたメッセージ|原始邮件|原邮件"
    r"|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale"
    r"|mensagem original|oorspronkelijk bericht|исходное сообщение|원본 메시지)"
    r"|content-type: message/rfc822"
    r"|(?:received|return-path): .*"
    r")",
    re.I | re.M,
)

# Sentences and line shapes that name the recipient of a failed delivery.
_RECIPIENT_PATTERNS = tuple(
    re.compile(p, re.I | re.M)
    for p in (
        rf"^[ \t]*<({_ADDR})>[ \t]*(?::|\.\.\.|\(|$)",  # Postfix, qmail, Yahoo
        rf"^[ \t]*\"?({_ADDR})\"?[ \t]*(?::|\.\.\.)?[ \t]*$",  # Exim, Gmail: address alone
        rf"^[ \t]*\"[^\"\n]*\"[ \t]*<({_ADDR})>[ \t]*$",  # "Name" <address> alone
        rf"RCPT TO:[ \t]*<?({_ADDR})>?",  # SMTP transcripts
        rf"^[ \t]*({_ADDR})\.\.\.",  # sendmail: addr... User unknown
        rf"\b(?:failed|invalid|unknown|bad)[ \t]+(?:recipient|address)(?:\(es\))?:?"
        rf"[ \t]*<?({_ADDR})",
        rf"^[ \t]*(?:original-|final-)?recipient:[ \t]*(?:rfc822;)?[ \t]*<?({_ADDR})",
        rf"\b(?:message|mail) (?:to|for) <?({_ADDR})>? (?:could|can)(?:not|n't| not)",
        rf"\b(?:delivered|deliver|delivery) to:?[ \t]*(?:the following[^\n]*\n\s*)?<?({_ADDR})>?",
        rf"\bdeliver(?:y of)? (?:your |the )?(?:message|mail|e-?mail) to:?[ \t]*<?({_ADDR})>?",
        rf"\baddress(?:ed)?(?: to which your message was addressed)?,?[ \t]+<?({_ADDR})>?,",
        rf"\b(?:user|mailbox|recipient|account)[ \t]+\(?<?({_ADDR})>?\)?[ \t]+"
        r"(?:unknown|does not exist|not found|is (?:not|no longer|unavailable)|was not)",
        rf"\((?:generated|expanded) from:?[ \t]*<?({_ADDR})>?\)",
        rf"^[ \t]*[45]\d\d[ -][^\n]*?\b(?:for|to)[ \t]+<?({_ADDR})",  # 552 … for addr
        rf"^[ \t]*({_ADDR})[ \t]+on[ \t]+\w",  # Exchange: addr on <date>
        rf"^[ \t]*({_ADDR})[ \t]+\(",  # addr (reason), Exchange 2007+
    )
)

_DELAY_TEXT = re.compile(
    r"(?:warning message only|will (?:continue|keep) (?:trying|to try)|still being retried"
    r"|配信が遅延|遅延しています|zustellung verzögert|remise retardée|entrega retrasada"
    r"|consegna ritardata|entrega atrasada|bezorging vertraagd|доставка задерживается"
    r"|\(delay\)|delayed mail|mail delivery warning|message \S+ delayed"
    r"|has not yet been delivered|has been (?:delayed|postponed)|delivery (?:is )?delayed"
    r"|message delayed|delivery attempts will continue|delivery to the following recipients?"
    r" has been delayed|will be retried|temporar(?:y|ily) (?:failure|deferred|unavailable))",
    re.I,
)
_GIVEN_UP_TEXT = re.compile(
    r"(?:i've given up|not going to try again|giving up|will not be retried|no further attempts)",
    re.I,
)
_PERMANENT_TEXT = re.compile(
    r"(?:permanent(?:ly)? (?:error|failure|fatal)|failed permanently|i've given up|"
    r"could not be delivered|couldn't be delivered|cannot be delivered|undeliver|aborted|"
    r"user unknown|unknown user|no such (?:user|mailbox|domain)|does not exist|"
    r"not (?:a )?(?:valid|known) (?:user|recipient|mailbox)|delivery (?:has )?failed|"
    r"not delivered|unable to deliver|could not deliver|fail(?:ed|ure)|returned mail|"
    r"non-delivery|returning message"
    # other languages: "does not exist", "could not be delivered", "unknown user"…
    r"|存在しません|見つかりません|配信できません|届きませんでした|送信に失敗|配信に失敗|受信拒否"
    r"|配送できません|送信できません|unzustellbar|nicht zugestellt|existiert nicht|fehlgeschlagen"
    r"|non remis|pas pu être (?:remis|distribué|délivré)|inconnue?\b|no se (?:ha )?pudo entregar"
    r"|no existe|non è stato (?:possibile )?recapitat|inesistente|não foi possível entregar"
    r"|desconhecido|onbestelbaar|mislukt|не может быть доставлено|не удалось доставить"
    r"|не существует|nie można dostarczyć|nieznany|退信|不存在|실패|존재하지 않)",
    re.I,
)


@dataclass(frozen=True)
class BounceInfo:
    """What a bounce tells us about a message we sent."""

    original_message_id: str | None  # without angle brackets
    recipients: tuple[str, ...]  # the failed addresses, lower case, in order found
    permanent: bool | None  # True 5.x.x / failed, False 4.x.x / delayed, None unknown


def parse_bounce(msg: Message) -> BounceInfo:
    """Read the original Message-ID, the failed recipients and the permanence."""
    msg = unwrap(msg)
    service = service_notice(msg)
    if service is not None and service.failed:
        return service.info
    groups = delivery_status_groups(msg)
    notice = notification_text(msg)
    recipients = find_recipients(msg, groups, notice)
    permanent = find_permanence(msg, groups, notice)
    if (not groups and not msg.get("X-Failed-Recipients") and not _from_mail_system(msg)
            and list_notice_kind(msg) in (ListNoticeKind.REJECTED, ListNoticeKind.LOOP)):
        recipients = list_addresses(msg, notice) or recipients
        permanent = True if permanent is None else permanent  # the list will not retry
    return BounceInfo(
        original_message_id=find_original_message_id(msg),
        recipients=recipients,
        permanent=permanent,
    )


# --- the notifications of mail services (JSON) ---------------------------------------
#
# Amazon SES publishes bounces, complaints and deliveries to SNS, which mails them as
# the bare JSON ("email" subscriptions, with a footer) or inside SNS's own envelope
# ("email-json": the notification is its "Message" string). Other relays' event records
# (SendGrid, Mailgun, Postmark…) reach a mailbox when a webhook is relayed by mail, as an
# ``application/json`` attachment or as the body. A body counts only when it *starts*
# with the JSON: a person quoting a notification in their own words is not one.

class ServiceEvent(StrEnum):
    """What a mail service's notification reports."""

    BOUNCE = "bounce"
    COMPLAINT = "complaint"  # the recipient called it spam: never write to them again
    DELAY = "delay"
    DELIVERY = "delivery"  # delivered: no failure


SERVICE_FAILURES = frozenset({ServiceEvent.BOUNCE, ServiceEvent.COMPLAINT, ServiceEvent.DELAY})
_B, _C, _D, _OK = (ServiceEvent.BOUNCE, ServiceEvent.COMPLAINT, ServiceEvent.DELAY,
                   ServiceEvent.DELIVERY)
_SES_TYPES = {"bounce": _B, "complaint": _C, "deliverydelay": _D, "delivery": _OK, "reject": _B}
_SES_RECIPIENTS = {_B: "bouncedRecipients", _C: "complainedRecipients",
                   _D: "delayedRecipients", _OK: "recipients"}
_EVENT_TYPES = {
    "bounce": _B, "bounced": _B, "hardbounce": _B, "softbounce": _B, "failed": _B,
    "dropped": _B, "rejected": _B, "spamreport": _C, "spamcomplaint": _C, "complained": _C,
    "complaint": _C, "delivered": _OK, "delivery": _OK, "deferred": _D, "delayed": _D,
}
_RECIPIENT_KEYS = ("emailAddress", "email", "Email", "recipient", "Recipient", "to")
_JSON_START = re.compile(r"\A\s*([{\[])")
JSON_LIMIT = 256_000  # characters of JSON we parse


@dataclass(frozen=True)
class ServiceNotice:
    """A mail service's notification: what happened (``bounce``, ``complaint``,
    ``delay`` or ``delivery``), to whom, and the message it was about."""

    event: ServiceEvent
    service: str  # "ses" or "events"
    info: BounceInfo

    @property
    def failed(self) -> bool:
        return self.event in SERVICE_FAILURES


def service_notice(msg: Message) -> ServiceNotice | None:
    """The first notification of a mail service in the message, else None."""
    for document in _json_documents(msg):
        for record in _records(document, depth=0):
            notice = _ses_notice(record) or _event_notice(record)
            if notice is not None:
                return notice
    return None


def _json_documents(msg: Message) -> Iterator[Any]:
    """JSON parts, then a plain-text body that starts with JSON (its bytes are looked
    at before anything is decoded: most mail is not JSON)."""
    leaves = [p for p in walk_parts(msg, into_messages=False) if not p.is_multipart()]
    for part in leaves:
        name = str(part.get_filename() or "").lower()
        if part.get_content_type() == "application/json" or name.endswith(".json"):
            yield from _parsed_json(_decoded_payload(part))
    body = next((p for p in leaves if p.get_content_type() == "text/plain"), None)
    raw = body.get_payload(decode=True) if body is not None else None
    if body is not None and isinstance(raw, bytes) and _JSON_START.match(raw[:64].decode(
            "ascii", "replace")):
        yield from _parsed_json(_decoded_payload(body))


def _parsed_json(text: str) -> Iterator[Any]:
    """The JSON value at the start of ``text`` (trailing text, e.g. a footer, ignored)."""
    text = text[:JSON_LIMIT].lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return
    yield value


def _records(value: Any, *, depth: int) -> Iterator[dict[str, Any]]:
    """Objects of a document: a list's items, SNS's envelope opened ("Message")."""
    if depth > 3:
        return
    if isinstance(value, list):
        for item in value[:100]:
            yield from _records(item, depth=depth + 1)
    elif isinstance(value, dict):
        inner = value.get("Message")
        if value.get("Type") == "Notification" and isinstance(inner, str):
            yield from (r for v in _parsed_json(inner) for r in _records(v, depth=depth + 1))
            return
        data = value.get("event-data")  # Mailgun
        yield data if isinstance(data, dict) else value


def _ses_notice(record: dict[str, Any]) -> ServiceNotice | None:
    kind = str(record.get("notificationType") or record.get("eventType") or "")
    event = _SES_TYPES.get(kind.lower())
    mail = record.get("mail")
    if event is None or not isinstance(mail, dict):
        return None
    body = _dict(record.get(kind[:1].lower() + kind[1:]))
    listed = body.get(_SES_RECIPIENTS[event])
    recipients = _addresses(listed, kind == "Reject" and mail.get("destination"))
    if event == ServiceEvent.BOUNCE:
        bounce_type = str(body.get("bounceType", "")).lower()
        permanent = {"permanent": True, "transient": False}.get(bounce_type)
        if kind == "Reject":
            permanent = True
    else:
        permanent = {_C: True, _D: False}.get(event)
    headers = _dict(mail.get("commonHeaders"))
    original = strip_message_id(str(headers.get("messageId") or _listed_header(mail)))
    return ServiceNotice(event, "ses", BounceInfo(original, recipients, permanent))


def _listed_header(mail: dict[str, Any]) -> str:
    headers = mail.get("headers")
    for item in headers if isinstance(headers, list) else []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == "message-id":
            return str(item.get("value", ""))
    return ""


def _event_notice(record: dict[str, Any]) -> ServiceNotice | None:
    kind = str(record.get("event") or record.get("RecordType") or record.get("Type") or "")
    event = _EVENT_TYPES.get(kind.replace("_", "").replace("-", "").lower())
    recipients = _addresses([record])
    if event is None or not recipients:
        return None
    permanent: bool | None = None
    if event == ServiceEvent.BOUNCE:
        severity = " ".join(str(record.get(k, "")) for k in ("severity", "Type", "type"))
        permanent = _severity(severity.lower(), str(record.get("status", "")))
    elif event in (ServiceEvent.COMPLAINT, ServiceEvent.DELAY):
        permanent = event == ServiceEvent.COMPLAINT
    original = strip_message_id(str(record.get("smtp-id") or record.get("Message-Id") or ""))
    return ServiceNotice(event, "events", BounceInfo(original, recipients, permanent))


def _severity(words: str, status: str) -> bool:
    if re.search(r"\b(?:permanent|hard\w*)\b", words):
        return True
    if re.search(r"\b(?:temporary|transient|soft\w*)\b", words):
        return False
    return not status.strip().startswith("4")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _addresses(*sources: Any) -> tuple[str, ...]:
    """Addresses of a list of strings or of objects with an address field."""
    found: list[str] = []
    for source in sources:
        for item in source if isinstance(source, list) else []:
            if isinstance(item, dict):
                item = next((item[k] for k in _RECIPIENT_KEYS if isinstance(item.get(k), str)), "")
            match = _ADDR_RE.search(str(item))
            if match:
                found.append(match.group(0))
    return _unique(found)


# --- the notices of mailing-list managers --------------------------------------------
#
# Mailman, Majordomo, LISTSERV, Sympa, ezmlm and hosted groups answer a post they do
# not distribute: held for a moderator, rejected (not a member, not allowed), a loop,
# or the results of "commands" they read in it. The words below say which, tried in
# order (a held post's notice gives "not a member" as its reason: it is held); the
# classifier asks for a list manager's address as well before it believes them.


LIST_NOTICE_CHARS = 2000  # of the notice read for its words: the reason comes first


class ListNoticeKind(StrEnum):
    """What a list manager's notice says about the message it answers."""

    HELD = "held"  # waits for a moderator: it may still be posted
    REJECTED = "rejected"  # not distributed: not a member, not allowed
    LOOP = "loop"  # a mail loop: not distributed
    COMMANDS = "commands"  # the results of commands read in the message


_LIST_NOTICES = (
    (ListNoticeKind.LOOP, re.compile(
        r"\bloop alert\b|\b(?:mail )?loop (?:was |has been )?detected|\bmail loop\b", re.I)),
    (ListNoticeKind.HELD, re.compile(
        r"awaits? (?:moderator |list owner )?approval|awaiting (?:moderator )?approval"
        r"|is being held until|held (?:for|until) (?:the )?(?:list )?(?:moderat|owner|approval)"
        r"|submitted to the (?:list )?moderator|sent to the (?:list )?moderator"
        r"|requires? (?:moderator )?approval|forwarded to the list owner", re.I)),
    (ListNoticeKind.REJECTED, re.compile(
        r"post by non-?member|\bnot (?:a )?(?:list )?(?:member|subscriber)|non-?member submission"
        r"|only (?:list )?(?:members|subscribers) (?:may|can) post"
        r"|not (?:allowed|authori[sz]ed|permitted) to (?:post|send)"
        r"|rejected posting|authori[sz]ation denied|rejected: not (?:a )?member"
        r"|\b(?:message|mail|post|posting|request)\b[^.\n]{0,80}\b(?:was|has been|is) "
        r"(?:automatically )?rejected"
        r"|\b(?:was|were|has not been|have not been|could not be) distributed", re.I)),
    (ListNoticeKind.COMMANDS, re.compile(
        r"^majordomo results|^ezmlm response|^results of your commands?"
        r"|^\*{4} command '[^'\n]*' not recognized|no valid commands found", re.I | re.M)),
)
_LIST_ADDRESS = re.compile(
    rf"(?:(?:message|mail|posting|post) (?:to|for)|posting to|distributed to|managing the"
    rf"|member of|subscribers? (?:of|to)|for list)[ \t\n]+(?:the )?(?:list )?['\"<]?({_ADDR})",
    re.I,
)


def list_notice_kind(msg: Message) -> ListNoticeKind | None:
    """What a list manager's notice says, by its words (subject, then its text)."""
    subject = decoded_header(msg, "Subject")
    text = subject + "\n" + notification_text(msg)[:LIST_NOTICE_CHARS]
    for kind, pattern in _LIST_NOTICES:
        if pattern.search(text):
            return kind
    return None


def _from_mail_system(msg: Message) -> bool:
    """MAILER-DAEMON or postmaster: an MTA's bounce, never a list manager's notice."""
    local = address_of(msg, "From").replace("\\", "").partition("@")[0].lower()
    return local in ("mailer-daemon", "mdaemon", "postmaster")


def list_addresses(msg: Message, notice: str) -> tuple[str, ...]:
    """The list a rejected post was for ("your message to parents@lists…")."""
    text = decoded_header(msg, "Subject") + "\n" + notice
    found = [m.group(1) for m in _LIST_ADDRESS.finditer(text)]
    exclude = _addresses_of_bounce(msg)
    return _unique([a for a in found if _is_recipient(a, exclude) and not _LIST_ROLE.search(a)])


# --- the delivery-status report (RFC 3464) --------------------------------------


def delivery_status_groups(msg: Message) -> list[dict[str, str]]:
    """The per-recipient field groups of every ``message/delivery-status`` part.

    Names are lower case; the per-message group (Reporting-MTA …) is included
    too, callers look for the fields they need. Reports inside attached
    messages do not count: a copy of an earlier bounce in the returned
    original is not this bounce (see ``unwrap`` for gateways that wrap one).
    """
    groups: list[dict[str, str]] = []
    for part in walk_parts(msg, into_messages=False):
        if part.get_content_type() == "message/delivery-status":
            groups.extend(_status_groups_of(part))
    return groups


def unwrap(msg: Message) -> Message:
    """The bounce inside a gateway's wrapper: a multipart that starts with a message.

    A bounce starts with its notice; a multipart whose first part is an
    attached message (maybe followed by a disclaimer) is only an envelope.
    """
    payload = msg.get_payload() if msg.is_multipart() else None
    while msg.is_multipart() and isinstance(payload, list) and payload:
        first = payload[0]
        if not isinstance(first, Message) or first.get_content_type() != "message/rfc822":
            break
        wrapped = first.get_payload()
        if not isinstance(wrapped, list) or not wrapped or not isinstance(wrapped[0], Message):
            break
        msg = wrapped[0]
        payload = msg.get_payload() if msg.is_multipart() else None
    return msg


def _status_groups_of(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [_fields_of_message(block) for block in payload if isinstance(block, Message)]
        if any(blocks):
            return blocks
    text = _decoded_payload(part)
    return [_fields_of_text(block) for block in re.split(r"\n[ \t]*\n", text) if block.strip()]


def _fields_of_message(block: Message) -> dict[str, str]:
    return {name.lower(): _clean(str(value)) for name, value in block.items()}


def _fields_of_text(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in re.findall(r"^([\w-]+):[ \t]*(.*(?:\n[ \t]+.*)*)", block, re.M):
        fields.setdefault(name.lower(), _clean(value))
    return fields


def _clean(value: str) -> str:
    return " ".join(value.split())


def status_actions(groups: list[dict[str, str]]) -> set[str]:
    """The ``Action`` values of a report, lower case (``failed``, ``delayed`` …)."""
    return {_action_of(g) for g in groups if g.get("action", "").strip()}


def _action_of(group: dict[str, str]) -> str:
    words = group.get("action", "").lower().split()
    action = words[0] if words else ""
    if action.startswith("fail"):  # "failure" and friends
        return "failed"
    return "delayed" if action.startswith("delay") else action


# --- recipients ---------------------------------------------------------------------


def find_recipients(msg: Message, groups: list[dict[str, str]], notice: str) -> tuple[str, ...]:
    """Failed recipients: X-Failed-Recipients, the DSN fields, else the notice text."""
    found = _header_recipients(msg) + _report_recipients(groups)
    if not found:
        found = _text_recipients(msg, notice)
    return _unique(found)


def _header_recipients(msg: Message) -> list[str]:
    values = [str(v) for v in msg.get_all("X-Failed-Recipients", [])]
    return [addr for _, addr in getaddresses(values) if _ADDR_RE.fullmatch(addr)]


def _report_recipients(groups: list[dict[str, str]]) -> list[str]:
    found: list[str] = []
    for group in groups:
        if _action_of(group) in SUCCESS_ACTIONS:
            continue
        for name in ("original-recipient", "final-recipient"):
            addr = _typed_address(group.get(name, ""))
            if addr:
                found.append(addr)
                break
    return found


def _typed_address(value: str) -> str | None:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    addr_type, _, addr = value.rpartition(";")
    if addr_type and addr_type.strip().lower() not in ("rfc822", "x-unknown"):
        return None
    match = _ADDR_RE.search(addr)
    return match.group(0) if match else None


def _text_recipients(msg: Message, notice: str) -> list[str]:
    exclude = _addresses_of_bounce(msg)
    aliases = {m.group(1).lower(): m.group(2) for m in _EXPANDED_FROM.finditer(notice)}
    found: list[tuple[int, str]] = []
    for pattern in _RECIPIENT_PATTERNS:
        found.extend((m.start(1), m.group(1)) for m in pattern.finditer(notice))
    named = [aliases.get(a.lower(), a) for _, a in sorted(found) if _is_recipient(a, exclude)]
    return named or _bare_names(msg, notice) or _any_addresses(notice, exclude)


def _bare_names(msg: Message, notice: str) -> list[str]:
    """AOL and directory-lookup bounces list local parts only: qualify them."""
    domain = _organisational_domain(address_of(msg, "From").rpartition("@")[2])
    heading = _BARE_NAMES_HEADING.search(notice)
    if not heading or not domain:
        return []
    names: list[str] = []
    for line in notice[heading.end() :].splitlines():
        if names and not line.strip():
            break
        match = re.match(r"^[ \t]+(\w[\w.+-]*)(?:[ \t]{2,}.*)?$", line)
        if match:
            names.append(f"{match.group(1)}@{domain}")
        elif line.strip():
            break
    return names


def _organisational_domain(domain: str) -> str:
    """``mr2.its.yale.edu`` → ``yale.edu``; ``mx.example.co.uk`` → ``example.co.uk``."""
    labels = domain.lower().strip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3 else 2
    return ".".join(labels[-keep:]) if len(labels) >= 2 else ""


def _any_addresses(notice: str, exclude: set[str]) -> list[str]:
    """Last resort: every address in the notice but those of its own headers."""
    lines = [line for line in notice.splitlines() if not _HEADER_LINE.match(line)]
    found = _ADDR_RE.findall("\n".join(lines))
    return [addr for addr in found if _is_recipient(addr, exclude)]


def _is_recipient(addr: str, exclude: set[str]) -> bool:
    return addr.lower() not in exclude and not _NOT_RECIPIENT.match(addr)


def _addresses_of_bounce(msg: Message) -> set[str]:
    """Addresses in the bounce's own headers: never the failed recipient."""
    values = [
        str(v)
        for name in ("From", "To", "Cc", "Sender", "Reply-To", "Return-Path")
        for v in msg.get_all(name, [])
    ]
    return {addr.lower() for _, addr in getaddresses(values) if addr}


def _unique(addresses: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for addr in addresses:
        seen.setdefault(addr.strip().strip(".").lower(), None)
    return tuple(seen)


# --- permanence ---------------------------------------------------------------------


def find_permanence(msg: Message, groups: list[dict[str, str]], notice: str) -> bool | None:
    """True for a permanent failure, False for a delay, None when nothing says."""
    actions = status_actions(groups)
    if actions & FAILED_ACTIONS:
        return True
    if actions & DELAYED_ACTIONS:
        return False
    classes = {m.group(1) for g in groups for m in [_STATUS_FIELD.match(g.get("status", ""))] if m}
    if classes & {"4", "5"}:
        return "5" in classes
    return _permanence_of_text(decoded_header(msg, "Subject") + "\n" + notice)


def _permanence_of_codes(text: str) -> bool | None:
    classes = {m.group(1) for m in _STATUS_CODE.finditer(text)}
    if "5" in classes:
        return True
    return False if "4" in classes else None


def _permanence_of_text(text: str) -> bool | None:
    if _GIVEN_UP_TEXT.search(text):
        return True
    if _DELAY_TEXT.search(text):
        return False
    codes = _permanence_of_codes(text)
    if codes is not None:
        return codes
    if _PERMANENT_TEXT.search(text):
        return True
    classes = {m.group(1) for m in _SMTP_REPLY.finditer(text)}
    if "5" in classes:
        return True
    return False if "4" in classes else None


def is_delay_notice(msg: Message) -> bool:
    """A warning that delivery is late but still being tried (never a ticket)."""
    msg = unwrap(msg)
    groups = delivery_status_groups(msg)
    actions = status_actions(groups)
    if actions:
        return actions <= DELAYED_ACTIONS | SUCCESS_ACTIONS and bool(actions & DELAYED_ACTIONS)
    return find_permanence(msg, groups, notification_text(msg)) is False


# --- the original message -----------------------------------------------------------


def find_original_message_id(msg: Message) -> str | None:
    """The Message-ID of the returned message: attached copy first, then quoted text."""
    for part in walk_parts(msg, into_messages=False):
        found = _message_id_of_part(part)
        if found:
            return found
    for text in text_parts(msg, into_messages=True):
        match = _MESSAGE_ID_LINE.search(text)
        if match and strip_message_id(match.group(1)):
            return strip_message_id(match.group(1))
    quoted = (g["message-id"] for g in delivery_status_groups(msg) if "message-id" in g)
    return strip_message_id(next(quoted, ""))  # headers pasted into a broken report


def _message_id_of_part(part: Message) -> str | None:
    if part.get_content_type() not in _ORIGINAL_TYPES:
        return None
    payload = part.get_payload() if part.is_multipart() else None
    if isinstance(payload, list):
        inner = next((p for p in payload if isinstance(p, Message)), None)
        return strip_message_id(str(inner.get("Message-ID", ""))) if inner else None
    headers = email.message_from_string(_decoded_payload(part), policy=email.policy.compat32)
    return strip_message_id(str(headers.get("Message-ID", "")))


def strip_message_id(value: str) -> str | None:
    """``<abc@example.org>`` → ``abc@example.org``; None when there is none."""
    match = re.search(r"<([^<>\s]+)>", value) or re.search(r"[^<>\s@]+@[^<>\s]+", value)
    if not match:
        return None
    ident = match.group(match.lastindex or 0).strip()
    return ident if ident and ident.isprintable() else None  # no NUL or controls


# --- text helpers (shared with classify) ---------------------------------------------


def walk_parts(msg: Message, *, into_messages: bool = True) -> Iterator[Message]:
    """Every part, depth first; ``into_messages=False`` stops at attached messages.

    Iterative, so that absurdly deep nesting cannot exhaust the call stack.
    """
    stack = [msg]
    while stack:
        part = stack.pop()
        yield part
        if not part.is_multipart():  # get_payload() would copy (and decode) a whole leaf
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        if not into_messages and part.get_content_maintype() == "message":
            continue
        stack.extend(sub for sub in reversed(payload) if isinstance(sub, Message))


def text_parts(msg: Message, *, into_messages: bool = False) -> Iterator[str]:
    """The decoded text of each text/plain (or, failing that, text/html) part."""
    parts = [p for p in walk_parts(msg, into_messages=into_messages) if not p.is_multipart()]
    plain = [p for p in parts if p.get_content_type() == "text/plain"]
    html = [p for p in parts if p.get_content_type() == "text/html"]
    for part in plain or html:
        text = _decoded_payload(part)
        yield _strip_tags(text) if part.get_content_type() == "text/html" else text


def notification_text(msg: Message) -> str:
    """The human-readable notice of a bounce, without the returned copy."""
    text = next(text_parts(msg), "")
    marker = _COPY_MARKER.search(text)
    return text[: marker.start()] if marker else text


def _decoded_payload(part: Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    text = decode_text(raw[: TEXT_LIMIT * 4], part.get_content_charset())
    return text[:TEXT_LIMIT].replace("\r\n", "\n")


_ISO_2022 = re.compile(rb"\x1b[$(][@-Z]")  # the escape sequences of ISO-2022-JP


def decode_text(raw: bytes, charset: str | None) -> str:
    """Bytes as text: the declared charset when it fits; ISO-2022-JP when its escape
    sequences are there; else UTF-8, else what ``charset-normalizer`` finds (mobile
    carriers and old MTAs send Shift_JIS, ISO-2022-JP or GBK with no charset, or the
    wrong one); never raises."""
    declared = (charset or "").lower()
    if declared and declared not in ("us-ascii", "ascii"):
        try:
            return raw.decode(declared)
        except (LookupError, ValueError):  # unknown name, or not that charset
            pass
    elif raw.isascii() and not _ISO_2022.search(raw):
        return raw.decode("ascii")
    for guess in ("iso-2022-jp", "iso2022_jp_2") if _ISO_2022.search(raw) else ():
        try:
            return raw.decode(guess)
        except ValueError:
            continue
    try:
        return raw.decode("utf-8")
    except ValueError:
        pass
    best = charset_normalizer.from_bytes(raw).best()
    if best is not None:
        return str(best)
    try:
        return raw.decode(declared or "latin-1", errors="replace")
    except LookupError:
        return raw.decode("latin-1")


def _strip_tags(markup: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", markup)
    text = re.sub(r"(?i)<br\s*/?>|</(?:p|div|tr|li|h\d)>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def decoded_header(msg: Message, name: str) -> str:
    """A header's value as text: RFC 2047 words and raw UTF-8 decoded; '' when absent."""
    value = msg.get(name)
    if value is None:
        return ""
    text = value if isinstance(value, str) else _text_of_chunks(value)
    if "\x1b" in text:  # raw ISO-2022-JP, as old Japanese mailers write it
        with contextlib.suppress(UnicodeError):
            text = decode_text(text.encode("ascii", "surrogateescape"), None)
    try:
        return _clean(_text_of_chunks(text))
    except (UnicodeError, LookupError, ValueError, TypeError, AssertionError,
            email.errors.MessageError):
        return _clean(text)  # a malformed encoded word: keep it as written


def _text_of_chunks(value: str | Header) -> str:
    chunks = decode_header(value)
    return "".join(
        _decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk
        for chunk, charset in chunks
    )


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if charset in (None, "unknown-8bit"):  # raw 8-bit header: UTF-8 (RFC 6532) or legacy
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")
    try:
        return data.decode(charset, errors="replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", errors="replace")


def address_of(msg: Message, name: str) -> str:
    """The bare address of a one-address header (From, Return-Path), '' if none."""
    return parseaddr(decoded_header(msg, name))[1]
