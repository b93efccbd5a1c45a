"""Webhook payloads as the providers document them (field names and shapes copied from their
public docs; ids and texts are the docs' own placeholders where they give one)."""

from __future__ import annotations

from typing import Any

# Twilio Messaging webhook (docs: "Messaging webhooks" request parameters)
TWILIO_SMS: dict[str, str] = {
    "ToCountry": "US",
    "ToState": "CA",
    "SmsMessageSid": "SM1c5bdb0bd5f5f1ed79d1f5e1a3b5bb7b",
    "NumMedia": "0",
    "ToCity": "SAN FRANCISCO",
    "FromZip": "94105",
    "SmsSid": "SM1c5bdb0bd5f5f1ed79d1f5e1a3b5bb7b",
    "FromState": "CA",
    "SmsStatus": "received",
    "FromCity": "SAN FRANCISCO",
    "Body": "Hello from Twilio",
    "FromCountry": "US",
    "To": "+15017122661",
    "ToZip": "94105",
    "NumSegments": "1",
    "MessageSid": "SM1c5bdb0bd5f5f1ed79d1f5e1a3b5bb7b",
    "AccountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "From": "+15558675310",
    "ApiVersion": "2010-04-01",
}

# Twilio WhatsApp inbound (docs: "WhatsApp ... incoming message" parameters)
TWILIO_WHATSAPP: dict[str, str] = {
    "SmsMessageSid": "MM5e1f0e3e4fa1e2a6c6c8f0f0b3a6b4c1",
    "NumMedia": "1",
    "ProfileName": "Ann",
    "WaId": "14155238886",
    "SmsStatus": "received",
    "Body": "Photo of the damaged box",
    "To": "whatsapp:+15017122661",
    "NumSegments": "1",
    "MessageSid": "MM5e1f0e3e4fa1e2a6c6c8f0f0b3a6b4c1",
    "AccountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "From": "whatsapp:+14155238886",
    "MediaContentType0": "image/jpeg",
    "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1",
    "ApiVersion": "2010-04-01",
}

# Slack Events API, event_callback envelope with a message event (docs: "Events API", "message")
SLACK_MESSAGE_EVENT: dict[str, Any] = {
    "token": "XXYYZZ",
    "team_id": "T123ABC456",
    "api_app_id": "A123ABC456",
    "event": {
        "type": "message",
        "channel": "C123ABC456",
        "user": "U123ABC456",
        "text": "Live long and prospect.",
        "ts": "1355517523.000005",
        "event_ts": "1355517523.000005",
        "channel_type": "channel",
    },
    "type": "event_callback",
    "authed_users": ["U123ABC456"],
    "event_id": "Ev123ABC456",
    "event_time": 1355517523,
}

# Messenger Platform webhook, messages event (docs: "Webhook Events: messages")
MESSENGER_MESSAGE: dict[str, Any] = {
    "object": "page",
    "entry": [
        {
            "id": "106433448820513",
            "time": 1458692752478,
            "messaging": [
                {
                    "sender": {"id": "1254459154682919"},
                    "recipient": {"id": "106433448820513"},
                    "timestamp": 1458692752478,
                    "message": {
                        "mid": "mid.1457764197618:41d102a3e1ae206a38",
                        "text": "hello, world!",
                    },
                }
            ],
        }
    ],
}

# Instagram webhook, comments field (docs: "Instagram Webhooks", comments)
INSTAGRAM_COMMENT: dict[str, Any] = {
    "object": "instagram",
    "entry": [
        {
            "id": "17841405822304914",
            "time": 1520383571,
            "changes": [
                {
                    "field": "comments",
                    "value": {
                        "from": {"id": "232323232", "username": "test"},
                        "media": {"id": "123123123", "media_product_type": "FEED"},
                        "id": "17865799348089039",
                        "text": "This is an example.",
                    },
                }
            ],
        }
    ],
}

# X Account Activity API, tweet_create_events (docs: "Account Activity data objects")
X_TWEET_CREATE: dict[str, Any] = {
    "for_user_id": "2244994945",
    "tweet_create_events": [
        {
            "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            "id_str": "1050118621198921728",
            "text": "@XDevelopers' brand is the worst at answering parcels questions",
            "user": {"id_str": "6253282", "name": "Customer", "screen_name": "customer"},
            "entities": {"user_mentions": []},
            "in_reply_to_status_id_str": None,
        }
    ],
}

# X Account Activity API, direct_message_events
X_DM: dict[str, Any] = {
    "for_user_id": "4337869213",
    "direct_message_events": [
        {
            "type": "message_create",
            "id": "954491830116155396",
            "created_timestamp": "1516403560557",
            "message_create": {
                "target": {"recipient_id": "4337869213"},
                "sender_id": "3001969357",
                "message_data": {"text": "Hello World!", "entities": {}},
            },
        }
    ],
    "users": {
        "3001969357": {"id": "3001969357", "name": "Jordan Brinks", "screen_name": "furiouscamper"}
    },
}

# Discourse post_created webhook (shape of the `post` serializer Discourse sends)
DISCOURSE_POST_CREATED: dict[str, Any] = {
    "post": {
        "id": 42,
        "name": "Bob",
        "username": "bob",
        "created_at": "2026-11-20T09:30:00.123Z",
        "cooked": "<p>I tried the link but nothing arrives.</p>",
        "raw": "I tried the link but nothing arrives.",
        "post_number": 1,
        "post_type": 1,
        "reply_to_post_number": None,
        "topic_id": 7,
        "topic_slug": "how-do-i-reset-my-password",
        "topic_title": "How do I reset my password?",
        "category_id": 4,
        "user_id": 15,
        "staff": False,
        "admin": False,
        "moderator": False,
    }
}
