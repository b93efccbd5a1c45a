"""Replies on Messenger, Instagram and X go out through the providers' own send APIs.

Through the real broker and the reply service, to local stand-ins of the Graph API and the
X API v2 that check what their docs require (`social_peers`): direct messages, comments,
mentions and tweets each reach their endpoint; rate limits (Graph's throttling codes, HTTP
429 with `Retry-After` or `x-rate-limit-reset`) are retried after the wait asked for; other
errors become `reply.failed` at once; without a token, replies still go to the reply webhook.
"""

from __future__ import annotations

import json
import time
from email.utils import formatdate

import httpx
from pydantic_settings import BaseSettings

from connectors.channels.meta import MetaSettings, normalise
from connectors.channels.x import XSettings
from connectors.outbound._acked import RetryPolicy
from connectors.outbound.senders import retry_after
from schemas import Topics
from tests.connectors.peers import eventually, http_peer
from tests.connectors.social_peers import Graph, XApi, graph_error, serving, x_problem
from tests.connectors.test_outbound import (
    all_committed,
    failed_events,
    publish,
    reply_event,
    reply_hook,
    running,
)

TEXT = "Your refund was sent today."


def meta(url: str, token: str = "page-token") -> dict[str, BaseSettings]:
    return {"meta": MetaSettings(page_access_token=token, graph_api_url=url)}


def x_api(url: str, token: str = "x-user-token") -> dict[str, BaseSettings]:
    return {"x": XSettings(access_token=token, api_url=url)}


def test_messenger_and_instagram_dms_comments_and_posts_use_the_graph_api(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with serving(Graph("page-token")) as graph:
        publish(
            kafka_bootstrap,
            topics,
            reply_event("m1", "facebook", recipient="psid-1", thread_ref="1001:psid-1"),
            reply_event("m2", "instagram", recipient="igsid-1", thread_ref="1789:igsid-1"),
            reply_event(
                "m3", "instagram", recipient="ana.l", thread_ref="18012", in_reply_to="17895"
            ),
            reply_event(
                "m4", "facebook", recipient="55", thread_ref="1001_77", in_reply_to="1001_77_9"
            ),
        )
        with running(kafka_bootstrap, topics, meta(graph.url)):
            accepted = graph.wait_for_accepted(4)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert {"edge": "messages", "to": "psid-1", "text": TEXT} in accepted
    assert {"edge": "messages", "to": "igsid-1", "text": TEXT} in accepted
    assert {"edge": "replies", "on": "17895", "text": TEXT} in accepted
    assert {"edge": "comments", "on": "1001_77_9", "text": TEXT} in accepted
    assert len(graph.calls) == 4  # each once
    for call in graph.calls:
        assert "page-token" not in call.path  # the token travels in the body, not the URL


def test_x_direct_messages_and_mentions_use_the_x_api(kafka_bootstrap: str, topics: Topics) -> None:
    with serving(XApi("x-user-token")) as x:
        publish(
            kafka_bootstrap,
            topics,
            reply_event("x1", "twitter", recipient="@ana_l", thread_ref="dm:99:2244994945"),
            reply_event(
                "x2",
                "twitter",
                recipient="@ana_l",
                thread_ref="tweet:1445880548472328190",
                in_reply_to="1445880548472328190",
            ),
        )
        with running(kafka_bootstrap, topics, x_api(x.url)):
            accepted = x.wait_for_accepted(2)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert {"dm_to": "2244994945", "text": TEXT} in accepted
    assert {"in_reply_to": "1445880548472328190", "text": TEXT} in accepted
    assert all(call.headers["authorization"] == "Bearer x-user-token" for call in x.calls)


def test_an_x_429_is_retried_after_the_rate_limit_window_resets(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with serving(XApi("x-user-token")) as x:
        x.throttle.append(
            lambda: (
                429,  # the window resets 2 to 3 s from now (a whole unix second)
                {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time()) + 3)},
                {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
            )
        )
        publish(
            kafka_bootstrap,
            topics,
            reply_event("r1", "twitter", thread_ref="tweet:7", in_reply_to="7"),
        )
        with running(kafka_bootstrap, topics, x_api(x.url), max_backoff_seconds=10):
            [created] = x.wait_for_accepted(1)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert created == {"in_reply_to": "7", "text": TEXT}
    first, second = x.call_times
    assert second - first >= 1.5  # the backoff alone would have been 0.05 s


def test_graph_throttling_and_a_429_with_retry_after_are_retried(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with serving(Graph("page-token")) as graph:
        graph.throttle += [
            graph_error(400, 613, "(#613) Calls to this api have exceeded the rate limit."),
            (429, {"Retry-After": "1"}, {"error": {"message": "slow down", "code": 4}}),
        ]
        publish(
            kafka_bootstrap,
            topics,
            reply_event("t1", "facebook", recipient="psid-1", thread_ref="1001:psid-1"),
        )
        with running(kafka_bootstrap, topics, meta(graph.url), max_backoff_seconds=10):
            [sent] = graph.wait_for_accepted(1)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert sent["to"] == "psid-1"
    assert len(graph.calls) == 3
    assert graph.call_times[2] - graph.call_times[1] >= 0.9  # as Retry-After asked


def test_provider_refusals_become_reply_failed_without_retries(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with serving(Graph("page-token")) as graph, serving(XApi("x-user-token")) as x:
        x.throttle.append(x_problem(403, "Forbidden", "duplicate content"))
        publish(
            kafka_bootstrap,
            topics,
            reply_event("e1", "facebook", recipient="psid-unknown", thread_ref="1001:psid-x"),
            reply_event("e2", "twitter", thread_ref="tweet:8", in_reply_to="8"),
            reply_event("e3", "twitter", thread_ref="tweet:", in_reply_to="not-a-tweet"),
            reply_event("e4", "facebook", thread_ref="1001_77", in_reply_to="../me/feed"),
        )
        config = {**meta(graph.url), **x_api(x.url)}
        with running(kafka_bootstrap, topics, config, attempts=4):
            failed = failed_events(kafka_bootstrap, topics, 4, "reply.failed")
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    by_key = {event.payload["message_key"]: event.payload for event in failed}
    assert (by_key["agent:e1"]["reason"], by_key["agent:e1"]["attempts"]) == ("http_4xx", 1)
    assert "No matching user found" in by_key["agent:e1"]["detail"]
    assert (by_key["agent:e2"]["reason"], by_key["agent:e2"]["attempts"]) == ("http_4xx", 1)
    assert by_key["agent:e3"]["reason"] == "no_recipient"
    assert by_key["agent:e4"]["reason"] == "no_recipient"  # never a path of its own choosing
    assert len(graph.calls) == 1 and len(x.calls) == 1


def test_a_rate_limit_that_persists_becomes_reply_failed_after_the_attempts(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with serving(XApi("x-user-token")) as x:
        x.throttle += [(429, {"retry-after": "0"}, {"title": "Too Many Requests"})] * 3
        publish(kafka_bootstrap, topics, reply_event("p1", "twitter", thread_ref="dm:1:42"))
        with running(kafka_bootstrap, topics, x_api(x.url), attempts=3):
            [failed] = failed_events(kafka_bootstrap, topics, 1, "reply.failed")
    assert (failed.payload["reason"], failed.payload["attempts"]) == ("http_429", 3)
    assert x.accepted == []


def test_a_wrong_token_is_a_permanent_failure(kafka_bootstrap: str, topics: Topics) -> None:
    with serving(Graph("page-token")) as graph:
        publish(
            kafka_bootstrap,
            topics,
            reply_event("w1", "instagram", recipient="igsid-1", thread_ref="1789:igsid-1"),
        )
        with running(kafka_bootstrap, topics, meta(graph.url, token="expired")):
            [failed] = failed_events(kafka_bootstrap, topics, 1, "reply.failed")
    assert (failed.payload["reason"], failed.payload["attempts"]) == ("http_4xx", 1)
    assert '"code": 190' in failed.payload["detail"]


def test_without_their_tokens_x_and_meta_replies_still_go_to_the_reply_webhook(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with http_peer() as hook:
        publish(
            kafka_bootstrap,
            topics,
            reply_event("h1", "twitter", recipient="@ana_l", thread_ref="dm:1:42"),
            reply_event("h2", "facebook", recipient="psid-1", thread_ref="1001:psid-1"),
        )
        with running(kafka_bootstrap, topics, reply_hook(hook.url)):
            calls = hook.wait_for(2)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    assert sorted(json.loads(call.body)["channel"] for call in calls) == ["facebook", "twitter"]


def test_the_wait_asked_for_is_read_from_every_documented_header() -> None:
    now = 1_900_000_000.0

    def answer(**headers: str) -> httpx.Response:
        return httpx.Response(429, headers=headers)

    assert retry_after(answer(**{"Retry-After": "7"}), now) == 7.0
    assert retry_after(answer(**{"Retry-After": formatdate(now + 30, usegmt=True)}), now) == 30.0
    assert retry_after(answer(**{"x-rate-limit-reset": str(int(now) + 12)}), now) == 12.0
    assert retry_after(answer(**{"Retry-After": "soon"}), now) is None
    assert retry_after(answer(), now) is None
    policy = RetryPolicy(attempts=5, first_backoff_seconds=1.0, max_backoff_seconds=60.0)
    assert policy.wait_after(1, None) == 1.0
    assert policy.wait_after(1, 12.0) == 12.0
    assert policy.wait_after(1, 900.0) == 60.0  # X's 15-minute window does not stall the service


def instagram_mention(value: dict[str, str]) -> dict[str, object]:
    """An Instagram `mentions` webhook (docs: the value holds only `media_id` and, for a
    comment that @mentions the account, `comment_id`)."""
    return {
        "object": "instagram",
        "entry": [{"id": "17841405822304914", "changes": [{"field": "mentions", "value": value}]}],
    }


def test_instagram_mentions_keep_what_the_mentions_api_needs_to_answer_them() -> None:
    [comment] = normalise(
        instagram_mention({"comment_id": "17894227972186120", "media_id": "17918195224117851"})
    ).messages
    assert comment.external_id == "17894227972186120"
    assert comment.thread_ref == "mention:17841405822304914:17918195224117851"
    [caption] = normalise(instagram_mention({"media_id": "17918195224117851"})).messages
    [other] = normalise(instagram_mention({"media_id": "17918195224117999"})).messages
    assert caption.external_id == "mention:17918195224117851"  # never the text "None"
    assert caption.message_key != other.message_key  # two caption mentions are two messages


def test_instagram_mentions_are_answered_through_the_mentions_edge(
    kafka_bootstrap: str, topics: Topics
) -> None:
    thread = "mention:17841405822304914:17918195224117851"
    with serving(Graph("page-token")) as graph:
        publish(
            kafka_bootstrap,
            topics,
            reply_event("n1", "instagram", thread_ref=thread, in_reply_to="17894227972186120"),
            reply_event(
                "n2", "instagram", thread_ref=thread, in_reply_to="mention:17918195224117851"
            ),
        )
        with running(kafka_bootstrap, topics, meta(graph.url)):
            accepted = graph.wait_for_accepted(2)
            assert eventually(lambda: all_committed(kafka_bootstrap, topics))
    on_comment, on_caption = sorted(accepted, key=lambda created: "comment_id" not in created)
    assert on_comment == {
        "edge": "mentions",
        "on": "17841405822304914",
        "media_id": "17918195224117851",
        "comment_id": "17894227972186120",
        "text": TEXT,
    }
    assert on_caption == {
        "edge": "mentions",
        "on": "17841405822304914",
        "media_id": "17918195224117851",
        "text": TEXT,
    }
