"""The message: one recipient's mail, built completely (charts, CSV) before anything is sent.

multipart/mixed [ multipart/related [ multipart/alternative [ text/plain, text/html ], image/png (one
chart per topic, referenced from the HTML as cid:) ], text/csv ]. The HTML is tables with inline styles
only (role="presentation", 640 px wide), which Outlook and Gmail both render; every record text is
escaped. The CSV (tracker/export.py columns) is named norepinephrine-papers-<Monday>.csv and is left out
when there is no paper to list. Subject: "Norepinephrine literature, week of <Monday>: 14 new papers in
4 topics", counting the topics that have new papers, or "…: no new papers in 4 topics", counting every
topic the mail covers; "; 2 updates to papers sent before" is added when it tells status events.

A topic showing more than its `max_per_digest` papers shows the strongest ones first and says "N new,
M shown"; all N are in the attached CSV. When nothing is new the mail still goes out (a heartbeat),
listing each topic with its last run, so a silent week can be told from a broken tracker. A topic whose
last run failed is shown in red (#b00020) with its error, in the HTML and (marked "!!") in the plain
text, and so are the query's health flags (tracker/watch.py). The mail opens with "Updates to papers
you already received"; a retracted paper is marked RETRACTED.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr

from tracker.digest import PHRASES, TopicDigest, build_topic_digest
from tracker.mail.audience import Mailing
from tracker.render import as_utc, plural, render
from tracker.store import Store
from tracker.screening import with_included_first
from tracker.store.changes import list_events
from tracker.store.database import utcnow
from tracker.watch import DEFAULT_QUIET_WEEKS

MAIL_TITLE = "Norepinephrine literature"
FAILED_COLOR = "#b00020"
CHART_WIDTH, CHART_HEIGHT = 592, 186  # the 700 x 220 chart scaled into the 640 px column less its padding
# Python folds some headers a little over 78 characters (the subject) onto a line of their own, which
# parsers then read with a leading space; RFC 5322 allows 998. Parts keep 78, which their encoders need.
MESSAGE_POLICY = SMTP_POLICY.clone(max_line_length=998)


def week_of(now: datetime) -> date:
    """The Monday of `now`'s week (UTC)."""
    day = as_utc(now).date()
    return day - timedelta(days=day.weekday())


def make_subject(week: date, papers: int, topics_with_papers: int, topics: int, updates: int = 0) -> str:
    head = f"{MAIL_TITLE}, week of {week.isoformat()}"
    if not papers:
        subject = f"{head}: no new papers in {plural(topics, 'topic')}"
    else:
        subject = f"{head}: {plural(papers, 'new paper')} in {plural(topics_with_papers, 'topic')}"
    return f"{subject}; {plural(updates, 'update')} to papers sent before" if updates else subject


def csv_filename(week: date) -> str:
    return f"norepinephrine-papers-{week.isoformat()}.csv"


def build_message(store: Store, mailing: Mailing, *, sender: str, now: datetime | None = None,
                  chart_cache: dict[str, bytes] | None = None, quiet_weeks: int = DEFAULT_QUIET_WEEKS) -> EmailMessage:
    """The complete message for `mailing`, From `sender` (an address, optionally with a display name).

    `chart_cache` (slug to PNG) lets one run draw each topic's chart once for all its recipients;
    `quiet_weeks` is TRACKER_QUIET_WEEKS, for the topics' health flags.
    """
    from tracker.charts import chart_png  # matplotlib takes a second to import: only when a message is built
    from tracker.export import csv_bytes

    now = as_utc(now) if now is not None else utcnow()
    week = week_of(now)
    attachment = csv_filename(week)
    digests = [
        build_topic_digest(store, topic, pmids=mailing.pmids_by_topic.get(topic.slug, ()), until=mailing.until,
                           max_items=topic.max_per_digest, full_report=f"the attached {attachment}",
                           quiet_weeks=quiet_weeks)
        for topic in mailing.topics
    ]
    total = len(mailing.pmids)
    updates = (with_included_first(store, mailing.topics, list_events(store, ids=mailing.event_ids))
               if mailing.event_ids else ())
    subject = make_subject(week, total, sum(1 for d in digests if d.total_new), len(digests), len(updates))
    domain = parseaddr(sender)[1].rpartition("@")[2]
    chart_cache = {} if chart_cache is None else chart_cache
    for topic in mailing.topics:
        if topic.slug not in chart_cache:
            chart_cache[topic.slug] = chart_png(store, topic.slug, end=now)
    charts = {topic.slug: (make_msgid(idstring=f"chart.{topic.slug}", domain=domain), chart_cache[topic.slug])
              for topic in mailing.topics}
    context = dict(
        heading=f"{MAIL_TITLE}, week of {week.isoformat()}", subject=subject, intro=describe_intro(digests, total),
        updates=updates, digests=digests, recipient=mailing.recipient, attachment=attachment if total else None, total=total,
        charts={slug: cid[1:-1] for slug, (cid, _) in charts.items()}, failed_color=FAILED_COLOR,
        chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, **PHRASES,
    )
    body = MIMEPart(policy=SMTP_POLICY)
    body.set_content(render("mail.txt.j2", **context), cte="quoted-printable")
    body.add_alternative(render("mail.html.j2", **context), subtype="html", cte="quoted-printable")
    related = MIMEPart(policy=SMTP_POLICY)
    related.make_related()
    related.attach(body)
    for slug, (cid, png) in charts.items():
        image = MIMEPart(policy=SMTP_POLICY)
        image.set_content(png, "image", "png", disposition="inline", filename=f"chart-{slug}.png", cid=cid)
        related.attach(image)

    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = mailing.recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=domain)
    message["MIME-Version"] = "1.0"
    message["Auto-Submitted"] = "auto-generated"
    # Outlook's out-of-office and read-receipt replies are not wanted by an unattended sender.
    message["X-Auto-Response-Suppress"] = "All"
    message.make_mixed()
    message.attach(related)
    if total:
        table = MIMEPart(policy=SMTP_POLICY)
        table.set_content(csv_bytes(store, list(mailing.pmids), [t.slug for t in mailing.topics]), "text", "csv",
                          disposition="attachment", filename=attachment, params={"charset": "utf-8"})
        message.attach(table)
    return message


def describe_intro(digests: Sequence[TopicDigest], total: int) -> str:
    if total:
        with_papers = sum(1 for d in digests if d.total_new)
        where = (f"the {plural(len(digests), 'topic')} you follow" if with_papers == len(digests)
                 else f"{with_papers} of the {plural(len(digests), 'topic')} you follow")
        return (f"{plural(total, 'new paper')} in {where}. "
                f"The strongest evidence comes first in each topic; the attached CSV lists all {total}.")
    troubled = [d for d in digests if d.last_run is None or d.last_run.status != "succeeded"]
    flagged = [d for d in digests if d.health]
    if not troubled and not flagged:
        return "No new papers this week: every query ran and found nothing new."
    if not troubled:
        return (f"No new papers this week, but the query of {plural(len(flagged), 'topic')} needs a look "
                "(marked below): the quiet may be a fault, not an empty week.")
    return (f"No new papers this week, but {plural(len(troubled), 'topic')} did not run cleanly "
            "(marked below): the quiet may be a fault, not an empty week.")


__all__ = ["MAIL_TITLE", "week_of", "make_subject", "csv_filename", "build_message", "describe_intro"]
