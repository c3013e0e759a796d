"""The plugin docs keep up with the code: every hook has a section headed by its exact signature (as
datasette's tests/test_docs.py does), and the examples are real code. The docs build as a site with
``mkdocs build --strict`` (a broken link or a page missing from the nav fails), and every relative link of the
README and the docs resolves."""

import inspect
import os
import re
import shutil
import subprocess
import sys
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


# -- the documentation site: built strictly, links that resolve, every image used ------------------------------

ROOT = DOCS.parent


def build_site(root: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of the mkdocs.yml in ``root``: every warning (a page missing from the nav, a
    link to a page or an anchor that does not exist) fails the build. Not ``--quiet``: in MkDocs 1.6 it hides
    the warnings from the strict counter too, and a broken build passes (mkdocs/mkdocs#4126)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_site_builds_strictly(tmp_path):
    done = build_site(ROOT, tmp_path / "site")
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.parametrize("mistake", ["a link to a page that does not exist", "a link to a missing section",
                                     "a page missing from the nav"])
def test_a_broken_link_or_a_page_missing_from_the_nav_fails_the_build(tmp_path, mistake):
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    if mistake == "a link to a page that does not exist":
        index.write_text(index.read_text() + "\n[gone](no-such-page.md)\n")
    elif mistake == "a link to a missing section":
        index.write_text(index.read_text() + "\n[gone](video.md#no-such-section)\n")
    else:
        (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n")
    done = build_site(tmp_path, tmp_path / "site")
    assert done.returncode != 0, f"mkdocs build --strict passed with {mistake}"
    assert ("no-such" in done.stderr + done.stdout) or ("orphan.md" in done.stderr + done.stdout)


def relative_links(path: Path):
    """The relative link targets of a Markdown file (code blocks and code spans left out), without anchors."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        yield target.split("#", 1)[0]


def test_every_relative_link_in_the_readme_resolves():
    targets = list(relative_links(ROOT / "README.md"))
    assert targets, "README.md links its pages"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_link_from_the_docs_resolves_also_outside_docs():
    """mkdocs checks the links between pages; one that leaves docs/ (to hooks/, blender_addon/) only this."""
    missing = []
    for page in DOCS.rglob("*.md"):
        for target in relative_links(page):
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)}: {target}")
    assert not missing, f"links to files that do not exist: {missing}"


def test_every_image_in_docs_images_is_shown_on_a_page():
    shown = set()
    for page in [*DOCS.rglob("*.md"), ROOT / "README.md"]:
        shown |= {(page.parent / t).resolve() for t in relative_links(page)}
    unused = [p.name for p in sorted((DOCS / "images").iterdir()) if p.resolve() not in shown]
    assert not unused, f"docs/images holds pictures no page shows: {unused}"


def test_every_example_in_the_readme_and_the_docs_books_pages_compiles():
    for path in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for i, code in enumerate(python_blocks(path.read_text())):
            compile(code, f"{path.relative_to(ROOT)} block {i}", "exec")


def test_the_video_guides_exit_codes_are_the_codes_nst_exits_with():
    from nst_plugin.failures import EXIT_CODES

    section = (DOCS / "video.md").read_text().split("\n## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert {int(code) for code in re.findall(r"^\| (\d+) \|", section, flags=re.M)} == set(EXIT_CODES)


def test_the_complete_engine_example_is_the_tested_package():
    """docs/plugins.md shows hooks/nst-crossfade whole, the engine tests/test_engine_plugin.py installs and runs."""
    module = (DOCS.parent / "hooks" / "nst-crossfade" / "nst_crossfade.py").read_text()
    section = sections(PLUGINS_MD)["A complete engine: `nst-crossfade`"]
    assert module in python_blocks(section)
