"""The surface: the Slack app. Holds Slack tokens only; talks to the brain via the queue."""
