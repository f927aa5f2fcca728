"""What a person does in the console, as steps the browser tests share."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def sign_in_by_link(page: Page, base_url: str, token: str) -> None:
    """Open the link ``medai token --link`` prints; the console takes the token and
    wipes it from the address bar."""
    page.goto(f"{base_url}/ui/#token={token}")
    expect(page.locator("#sign-out")).to_be_visible()


def open_page(page: Page, name: str) -> None:
    link = page.get_by_role("navigation", name="Pages").get_by_role("link", name=name)
    link.click()
    expect(page.locator("#page-title")).to_have_text(name)
    expect(link).to_have_attribute("aria-current", "page")


def confirm(page: Page, names: str) -> None:
    """Read the confirmation (it must name ``names``), then confirm."""
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-text")).to_contain_text(names)
    dialog.locator("#confirm-ok").click()
    expect(dialog).to_have_count(0)
