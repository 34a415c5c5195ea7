"""Step 5: find the ticket a message belongs to (SPEC section 4, step 5).

Pure given its lookups: the caller passes an object answering a few
questions about stored messages, so the rules can be tested without a
database. The first rule that matches wins:

1. a signed reply address → that ticket (the token also says who speaks);
   a token of a case merged since names the case it was merged into, as every
   rule does: mail never lands on, or reopens, an absorbed case;
2. In-Reply-To / References name a message we stored or sent → that ticket;
3. the subject carries our tag **and** the sender is a participant of that
   ticket → that ticket (a stranger quoting a number never joins the case);
4. otherwise a new ticket.

Arrival order must not matter, so the decision also looks the other way:
tickets whose stored messages name *this* message's id (its replies arrived
first). When that points at another ticket than rules 1–3, the two are the
same conversation and the caller merges them, or links them when a merge
would widen who receives either case (:mod:`mailroom.cases.merging`). Outlook's Thread-Index root is
a last resort for replies that lost their references.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class ThreadLookups(Protocol):
    def tickets_by_message_ids(self, ids: Sequence[str]) -> dict[str, int]:
        """Stored or sent messages with these Message-IDs → their ticket ids."""
        ...

    def tickets_referring_to(self, message_id: str) -> set[int]:
        """Tickets holding a message whose In-Reply-To/References names this id."""
        ...

    def is_participant(self, ticket_id: int, address: str) -> bool:
        """Whether the address is on the case (allowed or pending), or opened it."""
        ...

    def live_ticket(self, ticket_id: int) -> int | None:
        """The case itself, or the case it was merged into; None when there is none."""
        ...

    def ticket_by_conversation(self, conversation: str) -> int | None: ...


@dataclass(frozen=True)
class ThreadFacts:
    """What threading needs to know about one inbound message."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    sender: str | None
    tagged_ticket: int | None = None  # from "[Helpline #N]" in the subject
    token_ticket: int | None = None  # from a valid signed reply address
    conversation: str | None = None  # Outlook Thread-Index root


@dataclass(frozen=True)
class ThreadDecision:
    ticket_id: int | None  # None: open a new ticket
    rule: str  # token, references, subject-tag, conversation, replies, new
    merge: tuple[int, ...] = field(default=())  # other tickets of the same conversation
    quoted_ticket: int | None = None  # a tag we did not honour (recorded on the new ticket)


def find_thread(facts: ThreadFacts, lookups: ThreadLookups) -> ThreadDecision:
    """Apply the rules in order; see the module docstring.

    Every ticket the message is linked to (its known ancestors, and the
    replies to it that arrived first) is the same conversation: the ones
    other than the chosen ticket are returned in ``merge``.
    """
    referenced = _referenced_tickets(facts, lookups)
    linked = _tickets_of_replies(facts, lookups) | set(referenced)
    found, rule = _forward_match(facts, lookups, referenced)
    if found is None and linked:
        found, rule = min(linked), "replies"
    if found is None:
        quoted = facts.tagged_ticket if facts.tagged_ticket else None
        return ThreadDecision(None, "new", quoted_ticket=quoted)
    merge = tuple(sorted(t for t in linked if t != found))
    return ThreadDecision(found, rule, merge=merge)


def _forward_match(
    facts: ThreadFacts, lookups: ThreadLookups, referenced: list[int]
) -> tuple[int | None, str]:
    if facts.token_ticket is not None:
        live = lookups.live_ticket(facts.token_ticket)
        if live is not None:
            return live, "token"
    if referenced:
        return referenced[0], "references"
    tagged = facts.tagged_ticket
    if tagged is not None and facts.sender and lookups.is_participant(tagged, facts.sender):
        live = lookups.live_ticket(tagged)
        if live is not None:
            return live, "subject-tag"
    if facts.conversation:
        by_conversation = lookups.ticket_by_conversation(facts.conversation)
        if by_conversation is not None:
            return by_conversation, "conversation"
    return None, "new"


def _referenced_tickets(facts: ThreadFacts, lookups: ThreadLookups) -> list[int]:
    """Tickets of the known ancestors, nearest first (In-Reply-To, then References
    from the newest to the oldest), each once."""
    ordered = named_ids(facts.message_id, facts.in_reply_to, facts.references)
    if not ordered:
        return []
    known = lookups.tickets_by_message_ids(ordered)
    return _unique_ints(known[ident] for ident in ordered if ident in known)


def named_ids(
    message_id: str | None, in_reply_to: Sequence[str], references: Sequence[str]
) -> list[str]:
    """The Message-IDs a message names, nearest first (In-Reply-To, then References
    from the newest to the oldest), each once, its own id left out."""
    return [ident for ident in _unique([*in_reply_to, *reversed(references)])
            if ident != message_id]


def _unique_ints(items: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(items))


def _tickets_of_replies(facts: ThreadFacts, lookups: ThreadLookups) -> set[int]:
    if not facts.message_id:
        return set()
    return lookups.tickets_referring_to(facts.message_id)


def _unique(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def conversation_root(thread_index: str | None) -> str | None:
    """The conversation id in Outlook's Thread-Index: its first 22 bytes, hex."""
    if not thread_index:
        return None
    try:
        data = base64.b64decode("".join(thread_index.split()), validate=False)
    except (binascii.Error, ValueError):
        return None
    return data[:22].hex() if len(data) >= 22 else None
