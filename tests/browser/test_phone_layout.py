"""The main pages on a phone (390 px) and a desktop (1280 px): nothing overflows sideways, the menu
folds behind a button on the phone, a table's buttons stay on screen, and prose never breaks in the
middle of a word (only monospace values such as URLs and fingerprints may wrap anywhere).

The pages come from tests/browser/portal_pages.py (``MAIN_PAGES``)."""

from __future__ import annotations

import pytest

from tests.browser.portal_pages import ADMIN, MAIN_PAGES, PortalPage, World, keep_tables, world_fixture

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WIDTHS = {"phone": PHONE, "desktop": DESKTOP}

world = world_fixture()
_clean_tables = keep_tables

#: Where a value may wrap anywhere: machine text in a monospace font, and form fields.
MONOSPACE = "code, pre, kbd, samp, .mono, .error-code, textarea, input, select"

#: In the page: every visible word of prose that the layout split over two lines, and every prose
#: element whose style would allow that (word-break: break-all / overflow-wrap: anywhere).
BROKEN_WORDS_JS = """
(monospace) => {
  const broken = [], loose = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || !node.textContent.trim() || parent.closest(monospace)) continue;
    if (!parent.getClientRects().length) continue;  // not rendered (display: none, closed details)
    const style = getComputedStyle(parent);
    if (style.wordBreak === 'break-all' || style.overflowWrap === 'anywhere' || style.wordBreak === 'break-word') {
      loose.add(parent.tagName.toLowerCase() + '.' + parent.className + ': ' + style.wordBreak + '/' + style.overflowWrap);
    }
    // Words split only at spaces, hyphens and slashes (where a browser may break a line properly).
    const re = /[^\\s\\-\\u2010-\\u2014\\/]+/g;
    let match;
    while ((match = re.exec(node.textContent))) {
      if (match[0].length < 2) continue;
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(match[0]);
    }
  }
  return {broken, loose: [...loose]};
}
"""


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
@pytest.mark.parametrize("portal_page", MAIN_PAGES, ids=[page.name for page in MAIN_PAGES])
def test_nothing_overflows_and_no_word_breaks(world: World, portal_page: PortalPage, size: str) -> None:
    tab = world.tab(portal_page.who)
    tab.set_viewport_size(WIDTHS[size])
    tab = portal_page.open(world)
    overflow = tab.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        widest = tab.evaluate(
            """() => [...document.querySelectorAll('main *')]
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                 .slice(-5).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').trim().slice(0, 40))"""
        )
        pytest.fail(f"{portal_page.name} at {size}: {overflow}px wider than the screen; sticking out: {widest}")
    words = tab.evaluate(BROKEN_WORDS_JS, MONOSPACE)
    assert not words["loose"], f"{portal_page.name} at {size}: prose allowed to break inside words: {words['loose']}"
    assert not words["broken"], f"{portal_page.name} at {size}: words broken across lines: {words['broken']}"


def test_the_menu_folds_behind_a_button_on_a_phone(world: World) -> None:
    tab = world.tab(ADMIN)
    tab.set_viewport_size(PHONE)
    tab.goto(f"{world.url}/portal/")
    toggle = tab.locator("[data-nav-toggle]")
    menu = tab.locator("#site-menu")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    assert not menu.is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    users_link = tab.locator("[data-testid=nav-users]")
    assert users_link.is_visible()
    users_link.click()
    tab.wait_for_url("**/admin/users")
    # Escape folds it again and gives focus back to the button.
    tab.click("[data-nav-toggle]")
    tab.focus("[data-testid=nav-my-sessions]")
    tab.keyboard.press("Escape")
    assert not menu.is_visible()
    assert tab.evaluate("document.activeElement.hasAttribute('data-nav-toggle')")

    tab.set_viewport_size(DESKTOP)
    tab.goto(f"{world.url}/portal/")
    assert not toggle.is_visible()
    assert tab.locator("[data-testid=nav-users]").is_visible()


#: In the page: every button and link inside a table, and whether it is on screen and on top.
TABLE_CONTROLS_JS = """
() => [...document.querySelectorAll('main table button, main table a, main table [role=button]')]
  .filter(e => e.getClientRects().length)
  .map(e => {
    // Scroll the page (never a table's own scroller) so that the control is mid-screen.
    window.scrollTo(0, window.scrollY + e.getClientRects()[0].top - window.innerHeight / 2);
    const r = e.getClientRects()[0];
    let left = 0, right = window.innerWidth;
    for (let a = e.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') {
        const box = a.getBoundingClientRect();
        left = Math.max(left, box.left);
        right = Math.min(right, box.right);
      }
    }
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return {
      text: (e.textContent || '').trim().slice(0, 40),
      inside: r.width > 0 && r.left >= left - 0.5 && r.right <= right + 0.5,
      onTop: !!hit && (hit === e || e.contains(hit)),
    };
  })
"""


@pytest.mark.parametrize(
    "portal_page",
    [page for page in MAIN_PAGES if page.name in {"users", "support-sessions", "setup-connections", "your-sessions"}],
    ids=lambda page: page.name,
)
def test_table_buttons_are_reachable_on_a_phone(world: World, portal_page: PortalPage) -> None:
    tab = world.tab(portal_page.who)
    tab.set_viewport_size(PHONE)
    tab = portal_page.open(world)
    controls = tab.evaluate(TABLE_CONTROLS_JS)
    assert controls, f"{portal_page.name}: no button or link in a table"
    hidden = [control for control in controls if not (control["inside"] and control["onTop"])]
    assert not hidden, f"{portal_page.name} at 390px: table controls off screen or covered: {hidden}"
    tab.set_viewport_size(DESKTOP)
