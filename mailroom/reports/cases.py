"""The case report (SPEC section 9) as a :class:`~mailroom.reports.document.Document`.

:func:`case_report` turns the figures of :mod:`mailroom.reports.data` into
sections, tables, charts and their words; every format renders it
(:mod:`mailroom.reports.formats`). A new figure is a column, a row or a block
here, and appears in every format.

Its data keys, which scripts read (keep them stable):

==============  ====================  ========================================
CSV section     CSV key               metrics (JSON: the same, in ``cases``,
                                      ``first_response``, ``by_month``, …)
==============  ====================  ========================================
period          current, previous     from, to (ISO dates)
cases           opened                count, previous, change, change_percent
contacts        all                   messages, previous, change,
                                      change_percent, cases, per_case
set_aside       all                   spam, out_of_remit, test (cases of the
                                      period set aside: in no other figure)
month           YYYY-MM               cases, previous (same month a year
                                      before), change, change_percent
category        category key          cases, previous, change, change_percent
role            role key              (the same)
platform        platform key          (the same)
first_response  all                   cases, answered, median_business_hours
sla             first, next           met, missed, pending, rate
handling        advice_only,          cases, previous, change, change_percent
                escalated,
                not_answered
escalation      platform key, or all  opened, answered,
                                      median_answer_business_hours,
                                      outcome_<outcome> (removed, restricted,
                                      declined, no_action, then any other),
                                      decided, awaiting_outcome, no_response,
                                      removal_rate (over decided)
outcome_rate    platform key, or all  decided, removed, restricted, declined,
                                      no_action (each over decided)
escalation_     platform key, or all  opened, previous, change, change_percent
change                                (escalations against a year before)
repeat          platform key          accounts, cases (accounts reported in
                                      more than one case, and those cases)
account         the account's URL     platform, cases, first, last (only with
                                      ``--with-accounts``: names accounts)
==============  ====================  ========================================

The JSON has, besides, each row's ``summary`` ("24% more than the same quarter
last year") where it has a change.
"""

from __future__ import annotations

from collections.abc import Callable

from mailroom.reports.data import (
    ADVICE_ONLY,
    ESCALATED,
    HANDLING,
    NOT_ANSWERED,
    OUTCOMES,
    Breakdown,
    Change,
    Compliance,
    EscalationRow,
    MonthRow,
    Report,
    month_label,
)
from mailroom.reports.document import (
    HOURS,
    PERCENT,
    RATE,
    SIGNED,
    TEXT,
    Chart,
    Column,
    Definition,
    Document,
    Figure,
    Figures,
    Record,
    Row,
    Section,
    Series,
    Span,
    Table,
    for_people,
)
from mailroom.vocabulary import EscalationOutcome

__all__ = ["case_report", "label"]

OUTCOME_LABELS: dict[str, str] = {
    EscalationOutcome.REMOVED: "Removed", EscalationOutcome.RESTRICTED: "Restricted",
    EscalationOutcome.DECLINED: "Declined", EscalationOutcome.NO_ACTION: "No action",
}
HANDLING_LABELS: dict[str, str] = {
    ADVICE_ONLY: "Advice only", ESCALATED: "Escalated to a platform",
    NOT_ANSWERED: "Not answered",
}
ANONYMOUS = ("These figures are counts of cases and escalations. They hold no names, "
             "addresses or case details.")
NAMED = ("This report lists the accounts reported in more than one case, which can "
         "identify the people they target: it is for the helpline's own use. Without "
         "--with-accounts the report holds counts only.")


def label(key: str) -> str:
    """``social_worker`` → ``Social worker``."""
    text = key.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def case_report(report: Report) -> Document:
    """The report of ``report.period``, compared with the same dates a year before."""
    return Document(
        publisher=report.helpline, kind="case report",
        title=f"Cases from {report.period.label()}",
        subtitle=f"Compared with {report.previous_period.label()}",
        generated_at=report.generated_at, timezone=report.timezone,
        period=report.period, previous=report.previous_period,
        facts={"opening_hours": report.opening_hours},
        introduction=introduction(report),
        sections=(
            Section("key-figures", "Key figures", (key_figures(report),)),
            Section("cases", "Cases", (cases_record(report), contacts_record(report),
                                       set_aside_record(report), months_table(report),
                                       *breakdowns(report), response_record(report))),
            Section("answers", "Answers within target", (sla_table(report),)),
            Section("escalations", "Escalations to platforms", (
                handling_table(report), escalations_table(report),
                outcome_rates_table(report), escalation_change_table(report))),
            Section("repeats", "Accounts reported more than once",
                    (repeats_table(report), *accounts_table(report))),
        ),
        definitions=definitions(report),
        footnote=f"Business hours: {report.opening_hours}. A case naming several platforms "
                 f"counts under each.{set_aside_sentence(report)}",
    )


# --- the opening ---------------------------------------------------------------------


def introduction(report: Report) -> tuple[Span, ...]:
    cases, total = report.cases, report.escalation_total
    before = f" ({cases.previous} cases)" if cases.previous else ""
    spans = [Span("The helpline opened "), Span(f"{cases.current} cases", strong=True),
             Span(f" in this {report.kind}: {cases.sentence(report.kind)}{before}.")]
    if total.opened:
        platforms = len(report.escalations)
        spans.append(Span(f" It escalated {total.opened} reports of harmful content to "
                          f"{platforms} platform{'' if platforms == 1 else 's'}."))
    aside = set_aside_sentence(report)
    if aside:
        spans.append(Span(aside))
    return tuple(spans)


def set_aside_sentence(report: Report) -> str:
    """`` 2 more were set aside (spam 1, out of remit 1) and are not counted.``, or ""."""
    aside = sum(report.set_aside.values())
    if not aside:
        return ""
    kinds = ", ".join(f"{label(status).lower()} {n}" for status, n in report.set_aside.items()
                      if n)
    return (f" {aside} more {'case was' if aside == 1 else 'cases were'} set aside ({kinds}) "
            f"and {'is' if aside == 1 else 'are'} not counted.")


def key_figures(report: Report) -> Figures:
    cases, response, total = report.cases, report.first_response, report.escalation_total
    contacts, first = report.contacts, report.sla.first
    answered = for_people(total.answered / total.opened if total.opened else None, RATE)
    escalated = report.handling.current.get(ESCALATED, 0)
    return Figures((
        Figure("Cases opened", cases.current, detail=cases.sentence(report.kind),
               previous=cases.previous),
        Figure("Contacts", contacts.current, detail=contacts_detail(report),
               previous=contacts.previous),
        Figure("Median time to first response", response.median_hours, HOURS,
               unit="business hours",
               detail=f"{response.answered} of {response.cases} cases answered"),
        Figure("First answers within target", first.rate, RATE,
               detail=compliance_detail(first, "cases")),
        Figure("Cases escalated to a platform", escalated, summary=False,
               detail=f"{report.handling.current.get(ADVICE_ONLY, 0)} advice only"),
        Figure("Escalations to platforms", total.opened, summary=False,
               detail=(f"{answered} answered, {total.no_response} with no response; median "
                       f"answer {for_people(total.median_answer_hours, HOURS)} business hours"
                       if total.opened else f"none in this {report.kind}")),
        Figure("Removal rate", total.removal_rate, RATE, summary=False,
               detail=f"content removed in {total.outcomes.get(EscalationOutcome.REMOVED, 0)} "
                      f"of {total.decided} decided escalations"),
    ))


def contacts_detail(report: Report) -> str:
    """``messages from professionals into 25 cases, 1.6 a case; 10% more than the same
    quarter last year``."""
    contacts, cases = report.contacts, report.cases.current
    each = f", {contacts.current / cases:.1f} a case" if cases else ""
    return (f"messages from professionals into {cases} cases{each}; "
            f"{contacts.sentence(report.kind)}")


def compliance_detail(compliance: Compliance, what: str) -> str:
    """``20 of 25 cases within target; 2 not yet due``."""
    pending = f"; {compliance.pending} not yet due" if compliance.pending else ""
    return f"{compliance.met} of {compliance.due} {what} within target{pending}"


def set_aside_record(report: Report) -> Record:
    """Cases of the period set aside (spam, out of remit): in the data, not in the figures."""
    return Record("set_aside", ("set_aside", "all"),
                  tuple(Column(status) for status in report.set_aside),
                  dict(report.set_aside))


def cases_record(report: Report) -> Record:
    cases = report.cases
    return Record("cases", ("cases", "opened"), (
        Column("opened", csv="count"), Column("previous"), Column("change", kind=SIGNED),
        Column("change_percent", kind=PERCENT), Column("summary", kind=TEXT, csv=None),
    ), {"opened": cases.current, "previous": cases.previous, "change": cases.absolute,
        "change_percent": cases.percent, "summary": cases.sentence(report.kind)})


def contacts_record(report: Report) -> Record:
    """Contacts (every message professionals wrote into cases) against cases opened."""
    contacts, cases = report.contacts, report.cases.current
    return Record("contacts", ("contacts", "all"), (
        Column("messages"), Column("previous"), Column("change", kind=SIGNED),
        Column("change_percent", kind=PERCENT), Column("cases"),
        Column("per_case", kind=HOURS), Column("summary", kind=TEXT, csv=None),
    ), {"messages": contacts.current, "previous": contacts.previous,
        "change": contacts.absolute, "change_percent": contacts.percent, "cases": cases,
        "per_case": contacts.current / cases if cases else None,
        "summary": contacts.sentence(report.kind)})


def response_record(report: Report) -> Record:
    response = report.first_response
    return Record("first_response", ("first_response", "all"), (
        Column("cases"), Column("answered"), Column("unanswered", csv=None),
        Column("median_business_hours", kind=HOURS),
    ), {"cases": response.cases, "answered": response.answered,
        "unanswered": response.unanswered, "median_business_hours": response.median_hours})


# --- cases ---------------------------------------------------------------------------


def months_table(report: Report) -> Table:
    """Each month of the period beside the same month a year before."""
    now, before = series_names(report)
    cases = report.cases
    return Table(
        "months", "by_month", "month", "Cases opened by month",
        head=Column("month", "Month", kind=TEXT),
        columns=(Column("cases", now, short="Cases"),
                 Column("previous", before, short="Year before"),
                 *change_columns("month")),
        rows=tuple(_month_row(row) for row in report.by_month),
        total=Row("total", "Total", {"cases": cases.current, "previous": cases.previous,
                                     **change_values(cases, report.kind)}),
        empty="Cases by month: none",
        chart=Chart("columns", (
            Series("previous", "previous", before, "{row}, a year before: {value} cases"),
            Series("cases", "current", now, "{row}, this period: {value} cases"),
        ), f"Cases opened each month, {now} beside {before}. {cases.current} cases in all, "
           f"{cases.sentence(report.kind)}."),
    )


def _month_row(row: MonthRow) -> Row:
    return Row(row.month, month_label(row.month),
               {"cases": row.cases, "previous": row.previous,
                **change_values(row.change, "month")},
               short=month_label(row.month, short=True))


def change_columns(kind: str) -> tuple[Column, ...]:
    """The change against the year before: a signed count and a few words for people,
    the percent and the whole sentence for the data."""
    return (
        Column("change", "Change", kind=SIGNED),
        Column("change_percent", "Change (%)", kind=PERCENT, people=False),
        Column("compared", f"Against the same {kind} last year", kind=TEXT,
               short="Against last year", data=False),
        Column("summary", kind=TEXT, people=False, csv=None),
    )


def change_values(change: Change, kind: str) -> dict[str, object]:
    return {"change": change.absolute, "change_percent": change.percent,
            "compared": change.phrase(), "summary": change.sentence(kind)}


def series_names(report: Report) -> tuple[str, str]:
    """``2025`` and ``2024`` for a period within a year."""
    start, end = report.period.start, report.period.end
    if start.year == end.year:
        return str(start.year), str(start.year - 1)
    return "This period", "A year before"


def breakdowns(report: Report) -> tuple[Table, ...]:
    return (
        breakdown(report, "categories", "category", "Cases by category", report.by_category,
                  Column("category", "Category", kind=TEXT), label,
                  note="The category the practitioner gave each case."),
        breakdown(report, "roles", "role", "Cases by professional role", report.by_role,
                  Column("role", "Professional role", kind=TEXT), label,
                  note="Who contacted the helpline."),
        breakdown(report, "platforms", "platform", "Platforms named in cases",
                  report.by_platform,
                  Column("platform", "Platform", kind=TEXT, short="Platform named"),
                  report.platform_name,
                  note="A case naming several platforms counts under each; shares are of all "
                       "cases."),
    )


def breakdown(report: Report, ident: str, what: str, title: str, counts: Breakdown,
              head: Column, name: Callable[[str], str], *, note: str,
              keys: tuple[str, ...] = ()) -> Table:
    """Cases by one key, largest first (or in the order of ``keys``), each with its share
    of all cases and its change against the same dates a year before."""
    total = report.cases.current
    rows = tuple(Row(key, name(key), {
        "cases": counts.current.get(key, 0),
        "share": counts.current.get(key, 0) / total if total else None,
        "previous": counts.previous.get(key, 0),
        **change_values(counts.change(key), report.kind)})
        for key in (keys or counts.ranked()))
    listed = "; ".join(f"{row.label} {row.values['cases']} ({row.values['summary']})"
                       for row in rows)
    return Table(
        ident, f"by_{what}", what, title, head=head,
        columns=(Column("cases", "Cases"),
                 Column("share", "Share of all cases", kind=RATE, short="Share", data=False),
                 Column("previous", "A year before", short="Year before"),
                 *change_columns(report.kind)),
        rows=rows, empty=f"{head.heading}: none", note=note,
        chart=Chart("bars", (Series("cases", what, title="{row}: {value} cases ({share})"),),
                    f"{title}: {listed}." if rows else f"{title}: none.",
                    label="{cases} · {share}"),
    )


def handling_table(report: Report) -> Table:
    """The cases of the period given advice only, escalated, or not yet answered."""
    return breakdown(
        report, "handling", "handling", "Advice only and escalated cases", report.handling,
        Column("handling", "How the case was handled", kind=TEXT, short="Handled"),
        lambda key: HANDLING_LABELS.get(key, label(key)), keys=HANDLING,
        note="Of the cases opened in this period: escalated to at least one platform, "
             "answered without an escalation (advice only), or neither so far.")


def sla_table(report: Report) -> Table:
    """First and next answers against their targets, by the case's priority."""
    rows = (("first", "First answers", report.sla.first),
            ("next", "Next answers", report.sla.next))
    return Table(
        "sla", "sla", "sla", "Answers within target",
        head=Column("answer", "Answer", kind=TEXT, short="Answers"),
        columns=(Column("met", "Within target"), Column("missed", "Missed"),
                 Column("pending", "Not yet due"),
                 Column("rate", "Compliance", kind=RATE)),
        rows=tuple(Row(key, name, {"met": c.met, "missed": c.missed, "pending": c.pending,
                                   "rate": c.rate}) for key, name, c in rows),
        empty="Answers within target: none",
        note=f"Targets in business hours, by the case's priority: {report.sla_targets}. "
             "First answers: the cases opened in this period. Next answers: each time a "
             "professional wrote again after an answer, in this period. An answer still "
             "missing after its due time counts as missed; compliance is of those due.",
    )


# --- escalations ---------------------------------------------------------------------


def escalations_table(report: Report) -> Table:
    """Escalations per platform, most escalated first, and all of them."""
    outcomes = (*OUTCOMES, *sorted({o for row in report.escalations for o in row.outcomes
                                    if o not in OUTCOMES}))
    return Table(
        "outcomes", "escalations", "escalation", "Escalations to platforms by outcome",
        head=Column("platform", "Platform", kind=TEXT, short="Escalations"),
        columns=(
            Column("name", kind=TEXT, people=False, csv=None),
            Column("opened", "Opened"), Column("answered", "Answered"),
            Column("median_answer_business_hours", "Median answer (business hours)",
                   kind=HOURS, short="Median answer (h)"),
            *(Column(o, OUTCOME_LABELS.get(o, label(o)), group="outcomes", csv=f"outcome_{o}")
              for o in outcomes),
            Column("with_outcome", people=False, csv=None),
            Column("decided", "Decided", people=False),  # people read it beside the rates
            Column("awaiting_outcome", "Awaiting outcome", short="Awaiting"),
            Column("no_response", "No response"),
            Column("removal_rate", "Removal rate", kind=RATE),
        ),
        rows=tuple(_escalation_row(row, outcomes) for row in report.escalations),
        total=_escalation_row(report.escalation_total, outcomes),
        total_key="escalation_total",
        empty="Escalations to platforms: none in this period",
        note=f"Reports the helpline sent to platforms' trust-and-safety teams in this "
             f"{report.kind}, by what the platform did. Answered: the platform wrote back. "
             "No response: no answer and no outcome. Decided: an outcome is recorded. "
             "Awaiting outcome: answered, not decided. Removal rate: removed, out of decided "
             "escalations only (— when none is decided).",
        chart=Chart("stacked", tuple(
            Series(o, o, OUTCOME_LABELS.get(o, label(o)),
                   f"{{row}}, {OUTCOME_LABELS.get(o, label(o)).lower()}: {{value}}")
            for o in OUTCOMES
        ) + (Series("awaiting_outcome", "awaiting", "Awaiting outcome",
                    "{row}, answered, awaiting outcome: {value}"),
             Series("no_response", "no_response", "No response",
                    "{row}, no response: {value}")),
            outcome_description(report), label="{opened} opened"),
    )


def escalation_change_table(report: Report) -> Table:
    """Escalations per platform beside the same dates a year before."""
    counts, total = report.escalations_by_platform, report.escalation_total.opened

    def values(name: str, change: Change) -> dict[str, object]:
        return {"name": name, "opened": change.current,
                "share": change.current / total if total else None,
                "previous": change.previous, **change_values(change, report.kind)}
    return Table(
        "escalation-change", "escalations_by_platform", "escalation_change",
        "Escalations to platforms against last year",
        head=Column("platform", "Platform", kind=TEXT, short="Escalated to"),
        columns=(Column("name", kind=TEXT, people=False, csv=None),
                 Column("opened", "Escalations"),
                 Column("share", "Share of all escalations", kind=RATE, short="Share",
                        data=False),
                 Column("previous", "A year before", short="Year before"),
                 *change_columns(report.kind)),
        rows=tuple(Row(key, report.platform_name(key),
                       values(report.platform_name(key), counts.change(key)))
                   for key in counts.ranked()),
        total=Row("all", "All platforms", values(
            "All platforms", Change(total, sum(counts.previous.values())))),
        total_key="escalations_by_platform_total",
        empty="Escalations to platforms against last year: none in either period",
        note="Escalations opened in this period and in the same dates a year before, per "
             "platform.",
    )


def outcome_rates_table(report: Report) -> Table:
    """Per platform, each outcome's share of the decided escalations."""
    def row(item: EscalationRow) -> Row:
        return Row(item.platform, item.name, {
            "name": item.name, "decided": item.decided,
            **{o: item.outcome_rate(o) for o in OUTCOMES}})
    return Table(
        "outcome-rates", "outcome_rates", "outcome_rate", "Outcomes of decided escalations",
        head=Column("platform", "Platform", kind=TEXT, short="Decided escalations"),
        columns=(Column("name", kind=TEXT, people=False, csv=None),
                 Column("decided", "Decided"),
                 *(Column(o, OUTCOME_LABELS.get(o, label(o)), kind=RATE) for o in OUTCOMES)),
        rows=tuple(row(item) for item in report.escalations),
        total=row(report.escalation_total), total_key="outcome_rate_total",
        empty="Outcomes of decided escalations: none in this period",
        note="Each outcome out of the escalations with an outcome recorded; escalations "
             "with no response or still awaiting an outcome are in none of these rates.",
    )


def _escalation_row(row: EscalationRow, outcomes: tuple[str, ...]) -> Row:
    return Row(row.platform, row.name, {
        "name": row.name, "opened": row.opened, "answered": row.answered,
        "no_response": row.no_response,
        "median_answer_business_hours": row.median_answer_hours,
        **{o: row.outcomes.get(o, 0) for o in outcomes},
        "with_outcome": row.with_outcome, "decided": row.decided,
        "awaiting_outcome": row.awaiting_outcome, "removal_rate": row.removal_rate,
    })


def outcome_description(report: Report) -> str:
    total = report.escalation_total
    if not total.opened:
        return "No escalations to platforms in this period."
    parts = [f"{r.name}: {r.opened} opened, {r.answered} answered, {r.no_response} with no "
             f"response, {r.outcomes.get('removed', 0)} removed" for r in report.escalations]
    return (f"{total.opened} escalations to {len(report.escalations)} platforms. "
            + "; ".join(parts) + ".")


# --- about ---------------------------------------------------------------------------


def definitions(report: Report) -> tuple[Definition, ...]:
    return (
        Definition("Period", f"{report.period.label()}, by the date each case was opened "
                             f"({report.timezone} time), compared with the same dates a "
                             "year earlier."),
        Definition("Business hours", "Response times count only the hours the helpline is "
                                     f"open: {report.opening_hours}, public holidays "
                                     "excluded."),
        Definition("Contacts", "Every message professionals wrote into the helpline's cases "
                               "in the period, not only the first of each case."),
        Definition("Answers within target", "An answer relayed to the professional within "
                   "the business hours its case's priority allows (" + report.sla_targets
                   + "). An answer still missing after its due time is missed."),
        Definition("Decided escalations", "Escalations with an outcome recorded. Rates of "
                   "outcomes are over these only: an escalation a platform never answered "
                   "is no removal and no refusal."),
        Definition("Set aside", "Cases marked as spam, out of remit or a test of the "
                   "service are counted apart and left out of every other figure."),
        Definition("Anonymous statistics", ANONYMOUS) if report.repeated_accounts is None
        else Definition("Not for publication", NAMED),
    )



# --- accounts reported in more than one case --------------------------------------------


def repeats_table(report: Report) -> Table:
    """Per platform, the accounts reported in more than one case: counts only."""
    return Table(
        "repeats", "repeat_accounts", "repeat", "Accounts reported in more than one case",
        head=Column("platform", "Platform", kind=TEXT),
        columns=(Column("name", kind=TEXT, people=False, csv=None),
                 Column("accounts", "Accounts"), Column("cases", "Cases reporting them")),
        rows=tuple(Row(r.platform, r.name, {"name": r.name, "accounts": r.accounts,
                                            "cases": r.cases}) for r in report.repeats),
        empty="Accounts reported in more than one case: none in this period",
        note=f"Accounts on a platform (a profile, a channel) that professionals reported in "
             f"two or more cases in this {report.kind}, however they wrote the link.",
    )


def accounts_table(report: Report) -> tuple[Table, ...]:
    """The accounts themselves, when the report was asked to name them."""
    if report.repeated_accounts is None:
        return ()
    return (Table(
        "accounts", "repeated_accounts", "account", "The accounts",
        head=Column("url", "Account", kind=TEXT),
        columns=(Column("platform", "Platform", kind=TEXT), Column("cases", "Cases"),
                 Column("first", "First reported", kind=TEXT),
                 Column("last", "Last reported", kind=TEXT)),
        rows=tuple(Row(a.url, a.url, {
            "platform": report.platform_name(a.platform), "cases": a.cases,
            "first": a.first.date().isoformat(), "last": a.last.date().isoformat()})
            for a in report.repeated_accounts),
        empty="The accounts: none in this period",
        note="Not for publication: these accounts can identify the people they target.",
    ),)
