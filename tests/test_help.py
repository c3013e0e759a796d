"""``--help`` of the stylizing commands fits an 80-column terminal: the options are grouped in panels (the common
ones first, the advanced ones last) and no option name is cut (issue 28: rich cut ``--warm-iteratio…``)."""

import os
import re
import subprocess
import sys

import pytest
import typer

from nst_plugin.cli import app
from nst_plugin.config import HELP_PANELS, PANEL_IO

COMMANDS = ("image", "video", "webcam", "grid")
RUN = "import sys\nfrom nst_plugin.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n" \
      "print('TENSORFLOW' if 'tensorflow' in sys.modules else '')"


def _help(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH", "LINES")}
    env.update(COLUMNS="80", PYTHONIOENCODING="utf-8", NO_COLOR="1", TERM="dumb")
    done = subprocess.run([sys.executable, "-c", RUN, *args, "--help"], capture_output=True, text=True, env=env,
                          encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _panels(text: str) -> list[tuple[str, str]]:
    """(title, body) of each panel of a rich help text, in order."""
    parts = re.split(r"^╭─ (.+?) ─+╮$", text, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def _whole(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


@pytest.fixture(scope="module")
def helps():
    return {command: _help(command) for command in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_name_is_shown_whole_at_80_columns(helps, command):
    text = helps[command]
    assert all(len(line) <= 80 for line in text.splitlines())
    params = typer.main.get_command(app).commands[command].params
    names = [name for p in params for name in (p.opts + p.secondary_opts if p.param_type_name == "option" else [p.name])]
    missing = [name for name in names + ["--help"] if not _whole(name, text)]
    assert not missing, f"cut or missing in `nst {command} --help` at 80 columns: {missing}\n{text}"


@pytest.mark.parametrize("command", COMMANDS)
def test_options_are_grouped_in_panels_common_first_advanced_last(helps, command):
    panels = _panels(helps[command])
    titles = [title for title, _ in panels if title != "Arguments"]
    assert titles == [p for p in HELP_PANELS if p in titles], titles  # the intended order, no panel twice
    assert titles[0] == PANEL_IO and titles[-1].endswith("(advanced)")
    assert "Options" not in titles  # every option has a panel, --help included (in the first)
    body = dict(panels)
    assert _whole("--help", body[PANEL_IO]) and _whole("--style", body[PANEL_IO])
    for param in typer.main.get_command(app).commands[command].params:
        panel = getattr(param, "rich_help_panel", None)
        if param.param_type_name == "option":
            assert panel in HELP_PANELS, f"{param.opts[0]} has no help panel"
            assert _whole(param.opts[0], body[panel]), f"{param.opts[0]} is not in the panel {panel!r}"


def test_video_help_is_shorter_than_before_and_nst_help_imports_no_tensorflow(helps):
    assert len(helps["video"].splitlines()) < 250  # 329 lines before the panels
    for text in (_help(), *helps.values()):
        assert "TENSORFLOW" not in text  # the help is fast: no TensorFlow import
