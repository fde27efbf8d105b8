"""Cron expressions as cron itself reads them, turned into APScheduler triggers."""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

from tracker.text import whole_number

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, zone: tzinfo) -> CronTrigger:
    """A trigger for a five-field crontab expression, weekdays as cron numbers them (0 or 7 = Sunday).

    APScheduler 3's own `from_crontab` counts weekdays from Monday, so "0 7 * * 1" would fire on
    Tuesdays; here the weekday field is translated to day names first. As in APScheduler, a day of
    month and a weekday both given must both match.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"invalid cron expression {expression!r}: give five fields (minute hour day month weekday) "
                         "such as '0 6 * * 1'")
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=crontab_weekdays(weekday),
                           timezone=zone)
    except ValueError as error:
        raise ValueError(f"invalid cron expression {expression!r} ({error}); use five fields such as '0 6 * * 1'") from None


def crontab_weekdays(field_text: str) -> str:
    """Cron's weekday field ("1-5", "0,6", "*/2", "mon-fri") as APScheduler day names ("mon,tue,...")."""
    if field_text == "*":
        return field_text
    days: set[int] = set()
    for part in field_text.lower().split(","):
        body, slash, step_text = part.partition("/")
        if body == "*":
            low, high = 0, 6
        elif "-" in body:
            low, high = (_crontab_day(text) for text in body.split("-", 1))
        else:
            low = high = _crontab_day(body)
            if slash:
                high = 6
        step = whole_number(step_text) if slash else 1
        if step is None:
            raise ValueError(f"weekday step {step_text!r} is not a number")
        if step < 1 or high < low:
            raise ValueError(f"weekday range {part!r} is empty")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(CRON_DAYS[day] for day in sorted(days))


def _crontab_day(text: str) -> int:
    number = whole_number(text, high=7)
    if number is not None:
        return number
    if text[:3] in CRON_DAYS and len(text) == 3:
        return CRON_DAYS.index(text)
    raise ValueError(f"weekday {text!r} is not 0-7 or a day name such as mon")
