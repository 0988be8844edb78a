"""Pure renderers: events and groups to Slack Block Kit, Teams Adaptive Cards and plain text."""
