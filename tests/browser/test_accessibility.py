"""axe-core on every page and state of the portal (tests/browser/portal_pages.py lists them), plus
what axe does not check: one h1, a skip link, a title naming the page, a visible focus ring of at
least 3:1 on every focusable element, and "Copied" announced with focus kept on the button.

axe-core comes from the PyPI package axe-playwright-python (pinned in requirements-dev.txt, which
bundles axe.min.js); the test injects it into the page. The product never serves it.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.base import AXE_SCRIPT

from tests.browser.portal_pages import ADMIN, MAIN_PAGES, PAGES, PortalPage, World, keep_tables, world_fixture

pytestmark = pytest.mark.browser

#: axe-core impacts that fail the test (only "minor" is tolerated).
FAILING_IMPACTS = {"critical", "serious", "moderate"}
#: "Minor" rules that fail the test all the same, once fixed everywhere: a table's action column
#: has a header a screen reader can read ("Actions", visually hidden).
ALSO_FAILING_RULES = {"empty-table-header"}

# The injected axe script is inline: these browsers ignore the page's CSP (the product's own
# scripts run under it in every other browser test).
world = world_fixture(bypass_csp=True)
_clean_tables = keep_tables


def run_axe(tab) -> list[dict]:
    """Inject axe-core into the page and return its violations (WCAG 2.x A/AA and best practices)."""
    if not tab.evaluate("typeof window.axe !== 'undefined'"):
        tab.add_script_tag(content=AXE_SCRIPT)
    results = tab.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return results["violations"]


def focus_start(tab) -> None:
    """Move the keyboard's starting point to the top of the document, as after a fresh load."""
    tab.evaluate(
        "() => { window.scrollTo(0, 0); const b = document.body; b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex'); }"
    )


def describe(violations: list[dict]) -> str:
    """The violations as a reader wants them: rule, impact, help, and each offending element."""
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} [{violation['helpUrl']}]")
        for node in violation["nodes"][:8]:
            lines.append(f"    {' '.join(node['target'])}: {node['failureSummary'].splitlines()[-1].strip()}")
            lines.append(f"      {node['html'][:160]}")
    return "\n".join(lines)


@pytest.mark.parametrize("portal_page", PAGES, ids=[page.name for page in PAGES])
def test_axe_finds_nothing_serious(world: World, portal_page: PortalPage) -> None:
    tab = portal_page.open(world)
    violations = [v for v in run_axe(tab) if v["impact"] in FAILING_IMPACTS or v["id"] in ALSO_FAILING_RULES]
    assert not violations, f"axe-core on {portal_page.name} ({tab.url}):\n{describe(violations)}"


@pytest.mark.parametrize("portal_page", PAGES, ids=[page.name for page in PAGES])
def test_one_h1_a_skip_link_and_a_title_naming_the_page(world: World, portal_page: PortalPage) -> None:
    tab = portal_page.open(world)
    h1s = tab.locator("h1").all_inner_texts()
    assert len(h1s) == 1, f"{portal_page.name}: {len(h1s)} h1 elements {h1s}"
    title = tab.title()
    assert title.endswith(" · Phone Portal") and len(title) > len(" · Phone Portal") + 3, title
    skip = tab.locator("a.skip-link")
    assert skip.get_attribute("href") == "#main"
    assert tab.locator("#main").count() == 1
    # The skip link is the first thing Tab reaches, and it shows itself when it is.
    focus_start(tab)
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.classList.contains('skip-link')"), portal_page.name
    box = skip.bounding_box()
    assert box is not None and box["width"] > 20 and box["y"] >= 0


def test_wizard_titles_name_the_step(world: World) -> None:
    """The browser tab says where in the five setup steps the admin is."""
    tab = world.tab(ADMIN)
    expected = {
        "/setup/accounts/demo/connections/new": "Step 1 of 5",
        f"/setup/connections/{world.draft['okta']}/walkthrough": "Step 2 of 5: Set up Okta",
        f"/setup/connections/{world.draft['okta']}/import": "Step 3 of 5",
        f"/setup/connections/{world.imported['okta']}/test": "Step 4 of 5: Test sign-in",
        world.test_success_url: "Step 4 of 5",
    }
    for path, words in expected.items():
        tab.goto(world.url + path)
        assert words in tab.title(), (path, tab.title())


#: The states added for the confirmation pages, CSV jobs, onboarding, admin texts, app sign-in and
#: outages: what the page's title says, and an element only that state shows (so that axe and the
#: checks above ran on the state they are named after, not on a redirect or an error page).
STATES = {
    "login-signed-out-by-admin": ("Sign in", "[data-testid=session-ended]:has-text('administrator')"),
    "signin-other-host": ("Sign-in refused", "[data-testid=address-hint-link]"),
    "app-signin-email": ("Sign in to the desktop app", "[data-testid=app-email-form]"),
    "app-signin-email-refused": ("Sign in to the desktop app", "[data-testid=error-code]"),
    "app-signin-error": ("App sign-in stopped", "[data-testid=error-code]:has-text('UNKNOWN_APP')"),
    "unavailable": ("Briefly unavailable", "[data-testid=error-code]:has-text('DATABASE_UNAVAILABLE')"),
    "home-admin-no-connection": (
        "Home: set up Northwind (0 of 4 done)",
        "[data-testid=item-connect][data-status=none]",
    ),
    "home-admin-draft": ("Home: set up Globex", "[data-testid=item-connect][data-status=draft]"),
    "home-admin-tested": ("Home: set up Initech", "[data-testid=item-connect][data-status=tested]"),
    "home-admin": ("Home: set up Demo Company", "[data-testid=item-connect][data-status=enabled]"),
    "home-support": ("Home", "main:not(:has([data-testid=checklist]))"),
    "wizard-salesforce-2-walkthrough": ("Step 2 of 5: Set up Salesforce ·", "[data-testid=path-needed]"),
    "wizard-salesforce-2-connected-app": ("Set up Salesforce: a connected app", "[aria-current=true]"),
    "wizard-salesforce-2-external-client-app": ("the Salesforce CLI", "[data-testid=file-download]"),
    "test-result-refusal": ("Step 4 of 5: Test sign-in result", "[data-testid=fix-action]"),
    "test-result-signature": ("Step 4 of 5: Test sign-in result", "[data-testid=signer-claimed]"),
    "import-preview": ("Import users · Preview", "[data-testid=apply]"),
    "import-cancelled": ("Import users · Cancelled", "[data-testid=job-cancelled]"),
    "import-job-checking": ("Import users · Checking", "[data-testid=import-progress]"),
    "import-job-writing": ("Import users · Applying", "[data-testid=import-progress]"),
    "import-job-failed": ("Import users · Not imported", "[data-testid=error-code]:has-text('IMPORT_WORKER_LOST')"),
    "support-sessions-filtered": ("Sessions of users matching “alice”", "[data-testid=filter-email][value=alice]"),
    "confirm-delete-user-unticked": ("Delete sam@demo.example?", "[data-testid=confirm-box][aria-invalid=true]"),
}


@pytest.mark.parametrize("name", STATES, ids=list(STATES))
def test_each_state_is_the_one_its_name_says(world: World, name: str) -> None:
    words, selector = STATES[name]
    tab = next(page for page in PAGES if page.name == name).open(world)
    assert words in tab.title(), (name, tab.title())
    assert tab.locator(selector).count() >= 1, (name, selector, tab.url)


@pytest.mark.parametrize("portal_page", [p for p in PAGES if p.name.startswith("confirm-")], ids=lambda p: p.name)
def test_a_confirmation_asks_its_question_in_the_title_and_the_h1(world: World, portal_page: PortalPage) -> None:
    tab = portal_page.open(world)
    question = tab.inner_text("h1").strip()
    assert question.endswith("?") and tab.title() == f"{question} · Phone Portal"
    assert tab.locator("[data-testid=confirm-consequence]").inner_text().strip()
    assert tab.locator("form[data-testid=confirm-form] button[type=submit].danger").count() == 1
    assert tab.locator("[data-testid=cancel]").count() == 1


#: In the page: each focusable element, focused from the keyboard, and its ring's contrast with
#: what surrounds it (the first opaque background among its ancestors).
FOCUS_RING_JS = """
() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const el = document.activeElement;
  const style = getComputedStyle(el);
  let bg = [255, 255, 255];
  for (let node = el.parentElement; node; node = node.parentElement) {
    const c = parse(getComputedStyle(node).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) { bg = c.slice(0, 3); break; }
  }
  const ring = parse(style.outlineColor).slice(0, 3);
  const [hi, lo] = [lum(ring), lum(bg)].sort((a, b) => b - a);
  return {
    tag: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' + (el.textContent || '').trim().slice(0, 30),
    width: parseFloat(style.outlineWidth) || 0,
    style: style.outlineStyle,
    contrast: (hi + 0.05) / (lo + 0.05),
  };
}
"""


@pytest.mark.parametrize("portal_page", MAIN_PAGES, ids=[page.name for page in MAIN_PAGES])
def test_every_focusable_element_shows_a_ring_of_3_to_1(world: World, portal_page: PortalPage) -> None:
    tab = portal_page.open(world)
    focus_start(tab)
    seen: set[str] = set()
    weak = []
    for _ in range(150):
        tab.keyboard.press("Tab")
        ring = tab.evaluate(FOCUS_RING_JS)
        if ring["tag"].startswith("body") or ring["tag"] in seen:
            break
        seen.add(ring["tag"])
        if ring["style"] == "none" or ring["width"] < 2 or ring["contrast"] < 3:
            weak.append(ring)
    assert len(seen) >= 3, f"{portal_page.name}: Tab reached only {seen}"
    assert not weak, f"{portal_page.name}: focus rings too faint: {weak}"


def test_copied_is_announced_and_focus_stays_on_the_button(world: World) -> None:
    tab = world.tab(ADMIN)
    tab.goto(f"{world.url}/setup/connections/{world.draft['okta']}/walkthrough")
    button = tab.locator("button[data-copy]").first
    button.focus()
    tab.keyboard.press("Enter")
    tab.wait_for_function("document.querySelector('[data-copy-status]').textContent.includes('Copied')")
    region = tab.locator("[data-copy-status]")
    assert region.get_attribute("aria-live") == "polite"
    assert region.get_attribute("role") == "status"
    assert tab.evaluate("document.activeElement.hasAttribute('data-copy')")
    assert button.inner_text() == "Copied"
    field_id = button.get_attribute("data-copy").lstrip("#")
    label = tab.inner_text(f"label[for='{field_id}']").strip()
    assert label in region.inner_text()


#: Pages with several copy buttons.
COPY_PAGES = ("wizard-okta-2-walkthrough", "wizard-salesforce-2-connected-app", "wizard-okta-5-overview", "scim-setup")


@pytest.mark.parametrize("name", COPY_PAGES)
def test_each_copy_button_is_named_after_what_it_copies(world: World, name: str) -> None:
    """A screen reader's list of buttons must not read "Copy, Copy, Copy": each name is "Copy"
    followed by its field's label (and, for two fields of one label, what sets them apart), and
    no two are the same. The names are the accessible names the browser computes (found by role)."""
    portal_page = next(page for page in PAGES if page.name == name)
    tab = portal_page.open(world)
    buttons = tab.locator("button[data-copy]")
    assert buttons.count() >= 1, name
    names = []
    for index in range(buttons.count()):
        button = buttons.nth(index)
        field_id = button.get_attribute("data-copy").lstrip("#")
        label = " ".join((tab.text_content(f"label[for='{field_id}']") or "").split())
        accessible = f"Copy {' '.join((button.get_attribute('data-copy-label') or '').split())}"
        # The visible word starts the name (WCAG 2.5.3), then the field's label.
        assert (button.text_content() or "").strip() == "Copy"
        assert accessible.startswith(f"Copy {label}") and label, (name, field_id, accessible)
        names.append(accessible)
    assert len(set(names)) == len(names), f"{name}: copy buttons share a name: {names}"
    for accessible in names:
        # The browser's own accessible name (hidden buttons in closed sections are not in the tree).
        found = tab.get_by_role("button", name=accessible, exact=True, include_hidden=True)
        assert found.count() == 1, (name, accessible, found.count())


def test_a_favicon_and_no_404_for_favicon_ico(world: World) -> None:
    tab = world.tab(None)
    tab.goto(f"{world.url}/login")
    icon = tab.get_attribute("link[rel=icon]", "href")
    for path in (icon, "/favicon.ico"):
        response = tab.request.get(world.url + path)
        assert response.status == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.text().startswith("<svg")
