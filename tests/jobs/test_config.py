"""Worker settings reach the agent's configuration, with the same defaults on both sides."""

from __future__ import annotations

import pytest

from jobs.agent.config import AgentConfig
from jobs.config import agent_config
from process import settings
from process.exceptions import SettingsError
from process.settings import AgentLimits, ModelRoles


def worker(**env: str) -> settings.WorkerSettings:
    return settings.WorkerSettings(
        _env_file=None,  # type: ignore[call-arg]
        model_backend="replay",
        forge="local",
        **env,  # type: ignore[arg-type]
    )


def test_defaults_agree_with_the_agent_config() -> None:
    config = agent_config(worker())
    assert config.limits == AgentLimits()
    assert config.roles == ModelRoles()
    assert config.max_output_tokens == AgentConfig().max_output_tokens


def test_settings_reach_the_agent() -> None:
    config = agent_config(
        worker(
            max_turns="7",
            max_dollars="0.5",
            model_builder="claude-opus-5",
            prices='{"claude-opus-5": {"input": 15, "output": 75, "cache_write": 18.75, '
            '"cache_read": 1.5}}',
        )
    )
    assert config.limits.max_turns == 7
    assert config.limits.max_dollars == 0.5
    assert config.roles.model_builder == "claude-opus-5"
    assert config.price_table.price_for("claude-opus-5").input == 15


def test_bad_price_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTS_PRICES", "{not json")
    monkeypatch.setenv("AGENTS_MODEL_BACKEND", "replay")
    monkeypatch.setenv("AGENTS_FORGE", "local")
    with pytest.raises(SettingsError) as err:
        settings.load(settings.WorkerSettings, _env_file=None)
    assert err.value.variable == "AGENTS_PRICES"
    assert "JSON object" in err.value.expected
