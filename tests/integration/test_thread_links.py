"""The one query threading reads per message agrees with the lookups it replaces."""

from __future__ import annotations

from mailroom.store.models import Ticket
from mailroom.store.repository import ThreadStore, thread_links
from tests.factories import deliver, mail, ticket_of


def test_links_match_the_lookups_and_follow_merged_tickets(app) -> None:  # type: ignore[no-untyped-def]
    deliver(app, mail(message_id="root@t.example", subject="root"))
    deliver(app, mail(message_id="reply@t.example", in_reply_to="root@t.example", subject="Re"))
    deliver(app, mail(message_id="ooo@t.example", in_reply_to="later@t.example",
                      headers={"Auto-Submitted": "auto-replied"}, subject="Out of office"))
    deliver(app, mail(message_id="other@t.example", subject="another case"))
    first, other = ticket_of(app, "root@t.example"), ticket_of(app, "other@t.example")
    assert first and other and first != other and ticket_of(app, "ooo@t.example") is None
    with app.sessions.begin() as session:
        session.get(Ticket, other).merged_into = first  # its message stays where it was

    named = ["reply@t.example", "other@t.example", "unknown@t.example"]
    with app.sessions() as session:
        links = thread_links(session, "later@t.example", named)
        assert not links.stored and links.orphans and links.replies == set()
        assert links.tickets == {"reply@t.example": first, "other@t.example": first}
        root = thread_links(session, "root@t.example", [])
        assert root.stored and not root.orphans and root.replies == {first}
        plain, cached = ThreadStore(session), ThreadStore(session, links)
        assert plain.tickets_by_message_ids(named) == cached.tickets_by_message_ids(named) \
            == links.tickets
        assert plain.tickets_referring_to("root@t.example") \
            == ThreadStore(session, root).tickets_referring_to("root@t.example") == {first}
        assert plain.tickets_referring_to("later@t.example") == set()
        assert thread_links(session, None, []).tickets == {}
