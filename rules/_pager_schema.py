"""The `pagers:` section of a rule file: on-call targets by provider, and chains of them.

```yaml
pagers:
  db-primary: {pagerduty: {severity: critical}}
  db-backup: {opsgenie: {priority: P1, responders: [dba]}}
  duty-phone: {sms: {to: ["+15550100"]}}
  oncall-slack: {slack: {channel: C0123456}}
  duty-mail: {email: {to: [duty@example.com]}}
  database:
    chain:
      - {page: [db-primary, oncall-slack], pages: 3}
      - {page: [db-backup], pages: 2}
      - {page: [duty-phone, duty-mail]}
```

Secrets (routing keys, API keys, tokens, webhook URLs) are never here: the reply service
reads them from its settings by pager name (docs/sla.md, "On-call paging").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
"""An E.164 phone number, as Twilio takes it."""

PagerName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PagerDutySpec(_Spec):
    """A PagerDuty service (Events API v2); its routing key comes from the settings."""

    severity: Literal["critical", "error", "warning", "info"] = "critical"
    component: str | None = Field(default=None, max_length=255)
    group: str | None = Field(default=None, max_length=255)


class OpsgenieSpec(_Spec):
    """An Opsgenie alert (Alert API v2); its API key comes from the settings."""

    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P1"
    responders: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default=[], description="Opsgenie team names to route the alert to."
    )


class SmsSpec(_Spec):
    """Text messages through Twilio to these numbers (E.164)."""

    to: list[Annotated[str, Field(pattern=PHONE_PATTERN)]] = Field(min_length=1, max_length=20)


class SlackSpec(_Spec):
    """A Slack message: to `channel` with the bot token, or, without a channel, to the
    pager's incoming webhook URL from the settings."""

    channel: str | None = Field(default=None, min_length=1, max_length=100)


class EmailSpec(_Spec):
    """A mail to these addresses, through the SMTP relay."""

    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(
        min_length=1, max_length=20
    )


class ChainLevelSpec(_Spec):
    """One level of a chain: its targets, paged `pages` times unacknowledged before the next
    level (the last level has no `pages`: it repeats until acknowledged)."""

    page: list[PagerName] = Field(min_length=1, max_length=10)
    pages: Annotated[int, Field(ge=1, le=100)] | None = None


PROVIDER_KEYS = ("pagerduty", "opsgenie", "sms", "slack", "email")


class PagerSpec(_Spec):
    """One pager: a target on exactly one provider, or a `chain` of levels of targets."""

    description: str | None = None
    pagerduty: PagerDutySpec | None = None
    opsgenie: OpsgenieSpec | None = None
    sms: SmsSpec | None = None
    slack: SlackSpec | None = None
    email: EmailSpec | None = None
    chain: list[ChainLevelSpec] | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _one_kind(self) -> PagerSpec:
        kinds = [key for key in (*PROVIDER_KEYS, "chain") if getattr(self, key) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a pager is exactly one of pagerduty, opsgenie, sms, slack, email or chain"
                + (f" (this one has {', '.join(kinds)})" if kinds else "")
            )
        return self

    @property
    def provider(self) -> str | None:
        """The provider of a target; None for a chain."""
        return next((key for key in PROVIDER_KEYS if getattr(self, key) is not None), None)
