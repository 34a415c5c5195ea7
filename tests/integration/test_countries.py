"""Emergency numbers and reporting services per country ([signposting.countries.XX]): each
requester receives their own country's, read from the mail the file transport wrote, on
both databases."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.store.models import Event, Ticket
from tests.factories import deliver, mail
from tests.integration.test_hash_blocklist import delivered, received_by
from tests.integration.test_practitioner import (
    ANNA,
    open_case,
    outbox,
    plain_body,
    practitioner_reply,
)

IRISH_TEACHER = "head@school.ie"
UK_TEACHER = "head@school.org.uk"
TRUST_TEACHER = "jo@example-schools.org"  # a .org the domains map puts in Ireland
PRACTITIONERS = ("anna@helpline.example", "ben@helpline.example")
IRELAND = {
    "emergency_number": "112 or 999",
    "police_number": "the number of your local Garda station",
    "hotlines": [{"name": "Hotline.ie", "url": "https://hotline.ie",
                  "note": "you can report anonymously"}],
    "takedown": [{"name": "Take It Down, from NCMEC", "url": "https://takeitdown.ncmec.org"}],
    "police_report": [{"name": "An Garda Síochána, at your local Garda station",
                       "url": "https://www.garda.ie"}],
    "support": [{"name": "Childline, from the ISPCC", "phone": "1800 66 66 66"}],
}
SEXTORTION = ("A boy in year 10 is a victim of sextortion: someone he met online asks him "
              "for money, or they send his pictures to the whole school.\n")
UK_ONLY = ("report.iwf.org.uk", "Report Remove", "CEOP", "0800 1111", "on 999")
IRISH_ONLY = ("hotline.ie", "Garda", "1800 66 66 66", "112 or 999")


@pytest.fixture
def app(make_app) -> App:  # type: ignore[no-untyped-def]
    return make_app(signposting={"domains": {"example-schools.org": "IE"},
                                 "countries": {"IE": IRELAND}})


def report(app: App, sender: str, body: str = SEXTORTION) -> None:
    deliver(app, mail(sender=sender, subject="A pupil is being blackmailed", body=body))


def texts(mails: list[EmailMessage]) -> str:
    return "\n".join(" ".join(plain_body(m).split()) for m in mails)


def country_of(app: App, requester: str) -> str | None:
    with app.sessions() as session:
        return session.execute(select(Ticket.country).where(
            Ticket.requester == requester)).scalar_one()


def test_each_requester_receives_the_numbers_and_services_of_their_country(app: App) -> None:
    report(app, IRISH_TEACHER)
    report(app, UK_TEACHER)
    assert (country_of(app, IRISH_TEACHER), country_of(app, UK_TEACHER)) == ("IE", "GB")
    mails = delivered(app)
    irish, uk = received_by(mails, IRISH_TEACHER), received_by(mails, UK_TEACHER)
    assert len(irish) == len(uk) == 2  # the acknowledgement and the sextortion signposting
    irish_text, uk_text = texts(irish), texts(uk)
    assert "call the police now on 112 or 999" in irish_text  # both mails say it
    assert irish_text.count("call the police now on 112 or 999") == 2
    assert "Report it to the police on the number of your local Garda station, or online:" \
        in irish_text
    for words in ("- Hotline.ie: https://hotline.ie (you can report anonymously)",
                  "- An Garda Síochána, at your local Garda station: https://www.garda.ie",
                  "- Childline, from the ISPCC, 1800 66 66 66"):
        assert words in irish_text, words
    assert not any(words in irish_text for words in UK_ONLY)
    assert uk_text.count("call the police now on 999") == 2
    assert "Report it to the police on 101" in uk_text
    assert "report.iwf.org.uk" in uk_text and "Report Remove" in uk_text and "CEOP" in uk_text
    assert not any(words in uk_text for words in IRISH_ONLY)
    for practitioner in PRACTITIONERS:  # told of both cases; the signposting is not theirs
        notices = received_by(mails, practitioner)
        assert len(notices) == 2
        summaries = {plain_body(n).splitlines()[0].rsplit(" | ", 1)[1] for n in notices}
        assert summaries == {"country: IE", "country: GB"}  # the summary line ends with it
        assert "Hotline.ie" not in texts(notices) and "Report Remove" not in texts(notices)
    everyone = {a.strip() for m in mails for a in m["X-Mailroom-Rcpt-To"].split(",")}
    assert everyone == {IRISH_TEACHER, UK_TEACHER, *PRACTITIONERS}  # nobody else


def test_a_domain_the_map_names_is_in_its_country(app: App) -> None:
    report(app, TRUST_TEACHER, body="Someone made a fake account of our school.\n")
    assert country_of(app, TRUST_TEACHER) == "IE"
    [acknowledgement] = received_by(delivered(app), TRUST_TEACHER)
    assert "call the police now on 112 or 999" in texts([acknowledgement])


def test_a_practitioner_sets_the_country_and_the_next_mail_gives_its_services(
        app: App) -> None:
    notification = open_case(app)  # teacher@school.example: the default country
    assert "#country CODE" in plain_body(notification)  # the help at its foot
    deliver(app, practitioner_reply(notification, "#country ie\n#category threats\n"))
    assert country_of(app, "teacher@school.example") == "IE"
    with app.sessions() as session:
        [event] = session.execute(select(Event).where(Event.action == "ticket.country")).scalars()
    assert (event.actor, event.detail) == (ANNA, {"before": "GB", "after": "IE"})
    [signposting] = outbox(app, "signposting")
    assert [a.addr_spec for a in signposting["To"].addresses] == ["teacher@school.example"]
    text = " ".join(plain_body(signposting).split())
    assert "call the police now on 112 or 999" in text
    assert "report the threat to the police on the number of your local Garda station" in text
    assert "on 101" not in text


def test_a_country_without_a_set_is_refused_with_the_valid_ones(app: App) -> None:
    notification = open_case(app)
    deliver(app, practitioner_reply(notification, "#country FR\n\nHi Jo, an answer.\n"))
    assert country_of(app, "teacher@school.example") == "GB"
    assert outbox(app, "relay") == []  # the answer is held, as for any refused command
    [report_] = outbox(app, "command_error")
    assert [a.addr_spec for a in report_["To"].addresses] == [ANNA]
    assert ('- #country: "FR" is not a country the helpline has numbers and services for '
            "(one of: GB, IE)") in plain_body(report_)


def test_tickets_show_names_the_country(app: App, cli) -> None:  # type: ignore[no-untyped-def]
    report(app, IRISH_TEACHER)
    status, out, _ = cli("tickets", "show", "HL-000001")
    assert status == 0 and "country: IE" in out
    status, out, _ = cli("tickets", "show", "HL-000001", "--json")
    assert status == 0 and json.loads(out)["country"] == "IE"


def test_check_config_names_the_countries_and_the_domains(app: App, cli) -> None:  # type: ignore[no-untyped-def]
    status, out, _ = cli("check-config")
    assert status == 0
    assert "signposting: GB (the default set), IE; domains: example-schools.org -> IE\n" in out
