"""The README is the user's manual: it must list every option and the two commands."""

from pathlib import Path

from hearth.core.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_option_is_in_the_table() -> None:
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        flag = str(extra.get("flag", "--" + name.replace("_", "-")))
        row = next((line for line in README.splitlines() if line.startswith(f"| `{flag}")), None)
        assert row is not None, f"{flag} is missing from the README's options table"
        assert f"HEARTH_{name.upper()}" in row


def test_the_two_commands_open_the_readme() -> None:
    head = README[:800]
    assert "make run" in head and "make test" in head
