"""`/topics/<slug>/feed.xml`: a topic's Atom feed (tracker/outputs/feeds.py) for feed readers, which cannot log in.

The guard (tracker/web/security.py) lets a request through to this route with a valid feed token in the address
(`?token=`, `tracker users feed-token`) or a signed-in session; nothing else accepts the token. The feed links to
itself and to the topic's page at `[web] public_url`, else at the address the request came to.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tracker.errors import ConfigError, UnknownTopicError
from tracker.outputs.feeds import MEDIA_TYPE, render_feed
from tracker.web.state import web_of


async def feed(request: Request) -> Response:
    web = web_of(request)
    try:
        topic = web.scans.topic(request.path_params["slug"])
    except UnknownTopicError:
        return PlainTextResponse("There is no such topic: its feed address may be out of date.", status_code=404)
    except ConfigError as error:
        return PlainTextResponse(f"This topic's file does not load ({error}).", status_code=503)
    base = web.settings.web_public_url or str(request.base_url)
    body = await web.in_slow_lane(render_feed, web.store, topic, base_url=base)
    return Response(body, media_type=MEDIA_TYPE)


__all__ = ["feed"]
