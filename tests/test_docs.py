"""The plugin docs keep up with the code: every hook has a section headed by its exact signature (as
datasette's tests/test_docs.py does), and the examples are real code."""

import inspect
import re
from pathlib import Path

import pytest

from nst_plugin import hookspecs
from nst_plugin.registry import Registry

DOCS = Path(__file__).resolve().parent.parent / "docs"
PLUGINS_MD = (DOCS / "plugins.md").read_text()


def hook_specs():
    return sorted(name for name, value in vars(hookspecs).items()
                  if name.startswith("nst_") and hasattr(value, "nst_plugin_spec"))


def sections(text):
    """{heading: body} for the level-2 sections of a Markdown file."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("name", hook_specs())
def test_every_hook_has_a_section_headed_by_its_signature(name):
    heading = f"`{name}{inspect.signature(getattr(hookspecs, name))}`"
    found = sections(PLUGINS_MD)
    assert heading in found, f"docs/plugins.md needs a section '## {heading}'"
    assert python_blocks(found[heading]), f"the section of {name} needs a minimal example"


def test_no_section_for_a_hook_that_does_not_exist():
    documented = {h.strip("`").split("(")[0] for h in sections(PLUGINS_MD) if h.startswith("`nst_")}
    assert documented == set(hook_specs())


@pytest.mark.parametrize("kind", ["losses", "optimizers", "backbones", "engines"])
def test_register_examples_run(kind):
    heading = f"`nst_register_{kind}(register)`"
    (code,) = python_blocks(sections(PLUGINS_MD)[heading])
    namespace = {}
    exec(compile(code, f"docs/plugins.md ({heading})", "exec"), namespace)
    registry = Registry()
    namespace[f"nst_register_{kind}"](register=registry.registrar(kind, "docs-example"))
    assert len(getattr(registry, kind)) == 1


def test_every_example_compiles():
    for path in DOCS.glob("*.md"):
        for i, code in enumerate(python_blocks(path.read_text())):
            compile(code, f"{path.name} block {i}", "exec")


def event_tables():
    """{event name: [keys]} from docs/events.md: a '### `name`' heading followed by a key table."""
    text = (DOCS / "events.md").read_text()
    found = {}
    for name, body in re.findall(r"^### `(\w+)`\n(.*?)(?=^#|\Z)", text, flags=re.M | re.S):
        found[name] = re.findall(r"^\| `(\w+)` \|", body, flags=re.M)
    return found


def test_events_doc_and_event_types_agree():
    from nst_plugin.events import EVENT_TYPES, wire_keys

    documented = event_tables()
    assert sorted(documented) == sorted(EVENT_TYPES), "docs/events.md needs one '### `name`' section per event type"
    for name, event_type in EVENT_TYPES.items():
        assert documented[name] == wire_keys(event_type), f"docs/events.md: the keys of {name!r} differ from events.py"
