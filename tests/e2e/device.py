"""`Device`: one headless Chromium with a profile of its own, driven through Selenium as a person would.

Each step waits on a condition (the old page gone, the new page's ``data-page`` there), bounded by
`WAIT`; nothing sleeps.
"""

import functools
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _detached(exc: WebDriverException) -> bool:
    """Whether ``exc`` says the element's document was replaced, so that the click never reached the page.

    chromedriver reports some of these as a bare WebDriverException: "Node with given id does not
    belong to the document".
    """
    if isinstance(exc, NoSuchElementException | StaleElementReferenceException):
        return True
    return "does not belong to the document" in (exc.msg or "")


def _replaced(element: WebElement, driver: object = None) -> bool:
    """Whether ``element``'s document is gone (``driver``, from `WebDriverWait`, is not needed).

    `expected_conditions.staleness_of`, knowing chromedriver's other wording of a detached element.
    """
    try:
        element.is_enabled()
    except WebDriverException as exc:
        if _detached(exc):
            return True
        raise
    return False


# Seconds any one step may take: far more than one takes on a loaded 2-core machine.
WAIT = 20.0


class Device:
    """A browser with its own profile (cookies, cache, history), so two devices are two logins.

    Args:
        base_url: The app's URL; `open` takes paths under it.
        screenshots: Where `screenshot` writes.
        user_agent: Sent instead of Chromium's own, so that two devices can be told apart.
        tls: Accept the tests' self-signed certificate.
    """

    def __init__(self, base_url: str, screenshots: Path, *, user_agent: str | None = None, tls: bool = False) -> None:
        self.base_url = base_url
        self.screenshots = screenshots
        self._profile = tempfile.TemporaryDirectory(prefix="webapp-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-extensions",
            "--window-size=1100,720",
            f"--user-data-dir={self._profile.name}",
        ):
            options.add_argument(argument)
        if user_agent is not None:
            options.add_argument(f"--user-agent={user_agent}")
        if tls:
            options.add_argument("--ignore-certificate-errors")
        options.add_experimental_option("prefs", {"credentials_enable_service": False})
        try:
            self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        except BaseException:
            self._profile.cleanup()
            raise
        self.driver.set_page_load_timeout(WAIT)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            self._profile.cleanup()

    # Reading the page.

    @property
    def page(self) -> str:
        """The ``data-page`` of the page shown (``login``, ``devices``, ``error``, ...)."""
        return self.driver.find_element(By.TAG_NAME, "body").get_attribute("data-page") or ""

    @property
    def url(self) -> str:
        return self.driver.current_url

    def text(self, selector: str = "main") -> str:
        return self.driver.find_element(By.CSS_SELECTOR, selector).text

    def flashes(self) -> list[str]:
        return [element.text for element in self.driver.find_elements(By.CSS_SELECTOR, ".flash")]

    def session_cookie(self) -> dict[str, object]:
        """The one cookie of the browser's store for the app (the session's), with its attributes."""
        [cookie] = self.driver.get_cookies()
        return dict(cookie)

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"webapp-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path

    # Acting.

    def open(self, path_or_url: str) -> None:
        """Go to a path of the app (or a full URL) and wait until it has loaded."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        self.driver.get(url)  # returns once the page has loaded
        self._wait_for_page()

    def back(self) -> None:
        self.driver.back()
        self._wait_for_page()

    def reload(self) -> None:
        self.driver.refresh()
        self._wait_for_page()

    def submit(self, button: str, **fields: str | bool) -> None:
        """Fill ``fields`` (by name) of the form holding the button ``button`` (a CSS selector), click it, wait.

        A ``bool`` ticks or clears a checkbox. Chromium now and then replaces a freshly loaded document
        while the form is being filled or its button clicked (the elements then no longer belong to
        it, and the click reaches nothing): the page is waited for and the form filled again.
        """
        for attempt in range(3):
            old = self.driver.find_element(By.TAG_NAME, "html")
            try:
                self._fill(button, fields).click()
            except WebDriverException as exc:
                if attempt == 2 or not _detached(exc):
                    raise
                self._wait_for_page()
                continue
            WebDriverWait(self.driver, WAIT).until(functools.partial(_replaced, old))
            self._wait_for_page()
            return

    def _fill(self, button: str, fields: dict[str, str | bool]) -> WebElement:
        clicked = self.driver.find_element(By.CSS_SELECTOR, button)
        form = clicked.find_element(By.XPATH, "./ancestor::form")
        for name, value in fields.items():
            field = form.find_element(By.NAME, name)
            if isinstance(value, bool):
                if field.is_selected() != value:
                    field.click()
            else:
                field.clear()
                field.send_keys(value)
        return clicked

    def login(self, username: str, password: str, *, remember: bool = False) -> None:
        self.open("/login")
        self.submit("#login button", username=username, password=password, remember=remember)

    def _wait_for_page(self) -> None:
        # While a document is being replaced, a script may find no context to run in: ask again.
        # (chromedriver words some of those errors as a bare WebDriverException; any of them: ask again.)
        wait = WebDriverWait(self.driver, WAIT, ignored_exceptions=(WebDriverException,))
        wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")
