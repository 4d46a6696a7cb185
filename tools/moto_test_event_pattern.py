"""EventBridge TestEventPattern for the emulator, answered by moto's own pattern matcher.

moto 5.2.5 routes TestEventPattern to a stub (its backend raises NotImplementedError), although
it matches rules when events are put. This module answers the call with the same matcher
(`moto.events.models.EventPattern`), so a pattern can be checked against an event without
deploying a rule: `{"Result": true|false}`, or InvalidEventPatternException for a pattern moto
would refuse in PutRule. Imported by tools/moto_server.py; nothing else changes.

The request and answer follow the EventBridge API Reference, "TestEventPattern"
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_TestEventPattern.html). What
moto's matcher cannot show about AWS's (arrays of objects, for one) is in docs/event-rules.md.
"""

from __future__ import annotations

import json

from moto.events.models import EventPattern
from moto.events.responses import EventsHandler


def _test_event_pattern(self: EventsHandler):
    pattern = EventPattern.load(self._get_param("EventPattern"))  # raises InvalidEventPattern
    try:
        event = json.loads(self._get_param("Event") or "")
    except ValueError:
        return self.error("InvalidEventPatternException", "Event is not valid JSON.")
    if not isinstance(event, dict):
        return self.error("InvalidEventPatternException", "Event is not a JSON object.")
    return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers


def apply() -> None:
    EventsHandler.test_event_pattern = _test_event_pattern


apply()
