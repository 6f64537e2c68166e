"""The web app (examples/webapp/) in a real browser: headless Chromium, driven through Selenium.

What only a browser can show: which cookies it keeps and with what attributes, that a form from
another origin is refused while the app's own works, that the back button after logout fetches the
page again instead of showing it from the cache, and two browser profiles acting as two devices of
one user.
"""

import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from selenium.webdriver.common.by import By

from tests.e2e.conftest import WebApp
from tests.e2e.device import Device
from tests.support.live_server import live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The second device announces itself as another browser, so that the two rows of "Your devices" differ.
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
DAY = 24 * 3600


def test_login_cart_flash_and_logout(webapp: WebApp, device: Callable[..., Device]) -> None:
    browser = device(webapp.url)
    browser.open("/cart")
    assert browser.text("#empty") == "Your cart is empty."
    browser.submit("#add-tea")
    assert browser.flashes() == ["Added Green tea, 100 g."]
    browser.submit("#add-mug")
    browser.submit("#remove-mug")
    assert browser.text("#cart tr[data-item='tea'] .count") == "1"
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#cart tr[data-item='mug']")
    browser.screenshot("cart")

    # A private page sends a browser to the login page, and back after it.
    browser.open("/devices")
    assert browser.page == "login"
    assert browser.url.endswith("/login?next=%2Fdevices")
    browser.submit("#login button", username="alice", password="wrong")
    assert (browser.page, browser.flashes()) == ("login", ["Wrong username or password."])
    browser.screenshot("login")
    browser.submit("#login button", username="alice", password="alice")
    assert (browser.page, browser.flashes()) == ("devices", ["Welcome, Alice."])
    browser.reload()
    assert browser.flashes() == []  # a flash shows exactly once

    browser.open("/")
    assert browser.text("#who") == "Logged in as Alice (alice), with the role user."
    assert "You are logged out when you close this browser." in browser.text()
    assert "expiry" not in browser.session_cookie()  # no "remember me": a browser-session cookie
    browser.screenshot("home")
    browser.open("/cart")
    assert browser.text("#cart tr[data-item='tea'] .count") == "1"  # the cart survived the login

    browser.open("/admin")
    assert (browser.page, browser.text("#explanation")) == ("error", "This page is for administrators only.")
    assert "Status 403" in browser.text()

    browser.open("/devices")
    browser.submit("#logout")
    assert (browser.page, browser.flashes()) == ("login", ["You are logged out."])
    # Back to "Your devices": sent with no-store, it is fetched again, and the login page answers.
    browser.back()
    assert browser.page == "login"
    assert browser.url.endswith("/login?next=%2Fdevices")
    assert "Alice" not in browser.driver.page_source
    browser.reload()
    assert browser.page == "login"


def test_cookie_attributes_in_the_browser_over_https(https_webapp: WebApp, device: Callable[..., Device]) -> None:
    browser = device(https_webapp.url, tls=True)
    browser.login("alice", "alice")
    assert browser.page == "home"
    cookie = browser.session_cookie()
    assert {key: cookie[key] for key in ("name", "secure", "httpOnly", "sameSite", "path", "domain")} == {
        "name": "__Host-session",
        "secure": True,
        "httpOnly": True,
        "sameSite": "Lax",
        "path": "/",
        "domain": "127.0.0.1",
    }
    assert "expiry" not in cookie  # ends with the browser

    browser.submit("#logout")
    browser.submit("#login button", username="alice", password="alice", remember=True)
    assert "This browser remembers you until" in browser.text()
    cookie = browser.session_cookie()
    assert cookie["name"] == "__Host-session" and cookie["secure"] is True
    expiry = cookie["expiry"]
    assert isinstance(expiry, int)
    # Remembered for 30 days, counted from the session's creation (when the login page was first shown).
    assert 30 * DAY - 300 < expiry - time.time() <= 30 * DAY + 5


def test_a_form_from_another_origin_is_refused(webapp: WebApp, device: Callable[..., Device]) -> None:
    browser = device(webapp.url)
    browser.open("/cart")
    token = browser.driver.find_element(By.NAME, "csrf_token").get_attribute("value")
    # The other site even knows the token: the Origin check alone stops it. Another port of 127.0.0.1
    # is the same site (so SameSite=Lax sends the cookie) but another origin.
    other_site = FastAPI()

    @other_site.get("/", response_class=HTMLResponse)
    async def bait() -> str:
        return (
            f'<form method="post" action="{webapp.url}/cart/add"><input type="hidden" name="item" value="honey">'
            f'<input type="hidden" name="csrf_token" value="{token}"><button id="win">Win a prize</button></form>'
        )

    with live_server(other_site) as other_url:
        assert other_url != webapp.url
        browser.open(other_url + "/")
        browser.submit("#win")
    assert browser.page == "error"
    assert browser.text("#explanation") == "This form was sent from another site, so it was not accepted."
    assert "Status 403" in browser.text()
    browser.open("/cart")
    assert browser.driver.find_elements(By.ID, "empty")

    browser.submit("#add-honey")  # the same form, from the app's own page
    assert browser.text("#cart tr[data-item='honey'] .count") == "1"


def _other_row_revoked(browser: Device) -> None:
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#devices tr[data-current]")
    assert len(rows) == 2, browser.text()
    browser.submit("#devices tr[data-current='false'] button.revoke")


@pytest.mark.timeout(180)
def test_two_devices_of_one_user(webapp: WebApp, device: Callable[..., Device]) -> None:
    laptop = device(webapp.url)
    phone = device(webapp.url, user_agent=FIREFOX_ON_WINDOWS)
    laptop.login("alice", "alice")
    phone.login("alice", "alice")

    laptop.open("/devices")
    current = laptop.driver.find_element(By.CSS_SELECTOR, "#devices tr[data-current='true']").text
    other = laptop.driver.find_element(By.CSS_SELECTOR, "#devices tr[data-current='false']").text
    assert current.startswith("Headless Chrome ") and " on Linux 127.0.0.1 " in current
    assert current.endswith("This device")
    assert other.startswith("Firefox 128 on Windows 127.0.0.1 ")
    laptop.screenshot("devices")

    # Sign out the other device: its next page is the login page.
    _other_row_revoked(laptop)
    assert laptop.flashes() == ["Signed out Firefox 128 on Windows."]
    assert len(laptop.driver.find_elements(By.CSS_SELECTOR, "#devices tr[data-current]")) == 1
    phone.open("/devices")
    assert phone.page == "login"

    # "Log out everywhere else" ends it too.
    phone.submit("#login button", username="alice", password="alice")
    assert phone.page == "devices"
    laptop.open("/devices")
    laptop.submit("#revoke-others")
    assert laptop.flashes() == ["Signed out everywhere else (1 session)."]
    phone.open("/devices")
    assert phone.page == "login"

    # Changing the password, once the login is a while old, asks for the password again; then it ends the phone.
    phone.submit("#login button", username="alice", password="alice")
    webapp.clock.advance(10 * 60)
    laptop.open("/password")
    assert laptop.page == "reauth"
    laptop.screenshot("reauth")
    laptop.submit("#reauth button", password="wrong")
    assert (laptop.page, laptop.flashes()) == ("reauth", ["Wrong password."])
    laptop.submit("#reauth button", password="alice")
    assert laptop.page == "password"
    laptop.submit("#password button", new_password="new-secret", confirm="new-secret")
    assert (laptop.page, laptop.flashes()) == ("home", ["Password changed. 1 other session signed out."])
    phone.open("/devices")
    assert phone.page == "login"
    phone.submit("#login button", username="alice", password="alice")
    assert phone.flashes() == ["Wrong username or password."]

    # The admin sees every user's live sessions; Alice sees no admin page.
    phone.submit("#login button", username="admin", password="admin")
    phone.open("/admin")
    assert phone.page == "admin"
    assert "Alice (alice, 1 session)" in phone.text("section[data-user='alice'] h2")
    assert "Ada Admin (admin, 1 session)" in phone.text("section[data-user='admin'] h2")
    phone.screenshot("admin")
    laptop.open("/admin")
    assert laptop.page == "error"
