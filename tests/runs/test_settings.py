"""Settings: per-role requirements, one-line errors, secrets that never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from process import settings
from process.exceptions import SettingsError

pytestmark = pytest.mark.usefixtures("clean_env")


def test_bot_needs_only_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-abc")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-def")
    bot = settings.load(settings.BotSettings)
    assert bot.slack_app_token is not None
    assert bot.redis_url == "redis://127.0.0.1:6379/0"


def test_worker_needs_no_slack_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_test")
    worker = settings.load(settings.WorkerSettings)
    assert worker.max_turns == 40
    assert not hasattr(worker, "slack_bot_token")


def test_worker_key_requirements_follow_the_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as err:
        settings.load(settings.WorkerSettings)
    assert err.value.variable == "ANTHROPIC_API_KEY"
    monkeypatch.setenv("AGENTS_MODEL_BACKEND", "replay")
    with pytest.raises(SettingsError) as err:
        settings.load(settings.WorkerSettings)
    assert err.value.variable == "GITHUB_TOKEN"
    monkeypatch.setenv("AGENTS_FORGE", "local")
    assert settings.load(settings.WorkerSettings).forge == "local"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AGENTS_MAX_TURNS", "abc", "valid integer"),
        ("AGENTS_MAX_TURNS", "0", "greater than 0"),
        ("AGENTS_FORGE", "gitlab", "'github' or 'local'"),
        ("AGENTS_LOG_LEVEL", "LOUD", "'DEBUG'"),
    ],
)
def test_malformed_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("AGENTS_MODEL_BACKEND", "replay")
    monkeypatch.setenv("AGENTS_FORGE", "local")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as err:
        settings.load(settings.WorkerSettings)
    assert err.value.variable == variable
    assert expected in err.value.expected
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token-value"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-ok", "SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-ok"}, "SLACK_SIGNING_SECRET"),
    ],
)
def test_bot_token_problems(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        settings.load(settings.BotSettings)
    assert err.value.variable == variable
    for value in env.values():
        if value != "xoxb-ok":
            assert value not in str(err.value)


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-supersecret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_supersecret")
    worker = settings.load(settings.WorkerSettings)
    for text in (repr(worker), str(worker), worker.model_dump_json()):
        assert "supersecret" not in text
    assert worker.github_token is not None
    assert worker.github_token.get_secret_value() == "ghp_supersecret"


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "AGENTS_MODEL_BACKEND=replay\nAGENTS_FORGE=local\nAGENTS_MAX_TURNS=7\n"
    )
    assert settings.load(settings.WorkerSettings).max_turns == 7


def test_every_setting_has_a_description() -> None:
    for var, field, roles in settings.all_fields():
        assert field.description, var
        assert roles


def test_readme_table_matches_the_settings_classes() -> None:
    from cli.commands.config import readme_with_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert readme_with_table(readme) == readme, "run `make docs` to regenerate the table"


def test_env_example_matches_the_settings_classes() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    assert example == settings.env_example(), "run `make docs` to regenerate .env.example"
    for var, _field, _roles in settings.all_fields():
        assert f"# {var}=" in example
