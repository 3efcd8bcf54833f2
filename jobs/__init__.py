"""The brain: RQ jobs that run the blueprint and the agent loop. Never imports Slack."""
