"""Drives kromad's confirmation page in a real headless Chromium (Selenium with the OS's
chromedriver), and forges what a browser would not send with http.client.

Usage: python3 confirm_page.py CROSS_ORIGIN_URL CONFIRM_URL EXPECTED_TEXT DECLINE_URL MODEL

CROSS_ORIGIN_URL is the page of an instruction that must stay waiting: another origin's page
posts to it. CONFIRM_URL is the page of an instruction the person confirms, after which the
same POST replayed is refused. EXPECTED_TEXT must appear on the page (a prompt), with the
MODEL, the number of candidates and the scene's input image shown. DECLINE_URL is the page of
an instruction the person declines.
"""

import http.client
import http.server
import sys
import threading
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def post(url, fields, origin=None, host=None):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if origin is not None:
        headers["Origin"] = origin
    if host is not None:
        headers["Host"] = host
    connection.request("POST", parts.path, urllib.parse.urlencode(fields), headers)
    response = connection.getresponse()
    return response.status, response.read().decode()


def get(url, host=None):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {} if host is None else {"Host": host}
    connection.request("GET", parts.path, headers=headers)
    response = connection.getresponse()
    return response.status, response.read().decode(), {k.lower(): v for k, v in response.getheaders()}


def body_text_once_it_says(driver, words):
    """The page's text once it contains `words`: a form's answer replaces the page a moment after
    the submit, so reading at once could read the page that is going away."""
    # While the page changes, its old elements go away under the reader: try again then.
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: words in driver.find_element(By.TAG_NAME, "body").text
    )
    return driver.find_element(By.TAG_NAME, "body").text


def token_of(driver):
    return driver.find_element(By.NAME, "token").get_attribute("value")


def gone(element):
    """Like `staleness_of`, but a node chromedriver already dropped from the new document counts
    as gone: asked about it in the middle of the navigation, chromedriver answers "does not
    belong to the document" instead of "stale"."""
    def check(_driver):
        try:
            element.is_enabled()
            return False
        except WebDriverException as err:
            stale = "stale" in str(err) or "does not belong to the document" in str(err)
            if stale:
                return True
            raise
    return check


def main(cross_url, confirm_url, expected, decline_url, model):
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(confirm_url))

    # GET changes nothing and says what it costs; the page forbids framing and caching.
    status, body, headers = get(confirm_url)
    assert status == 200, (status, body)
    assert "Maximum cost" in body and expected in body, body
    assert headers.get("x-frame-options") == "DENY", headers
    assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), headers
    status, _, _ = get(confirm_url, host="evil.example:80")
    assert status == 421, status

    driver = browser()
    try:
        # Another site's page posts a confirmation to the first instruction: the browser sends
        # that site's Origin, and kromad refuses it.
        driver.get(cross_url)
        stolen = token_of(driver)
        form = (
            '<form id="f" method="post" action="{url}">'
            '<input name="token" value="{token}"><input name="decision" value="confirm"></form>'
            "<script>document.getElementById('f').submit()</script>"
        ).format(url=cross_url, token=stolen)

        class Evil(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(form.encode())

            def log_message(self, *args):
                pass

        # Threaded: Chromium opens spare connections that a one-at-a-time server would wait on.
        evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
        threading.Thread(target=evil.serve_forever, daemon=True).start()
        driver.get("http://127.0.0.1:{}/".format(evil.server_address[1]))
        body_text_once_it_says(driver, "must come from the page itself")
        evil.shutdown()

        # Forgeries without a browser: no Origin, a foreign Origin, a foreign Host.
        fields = {"token": stolen, "decision": "confirm"}
        assert post(cross_url, fields)[0] == 403
        assert post(cross_url, fields, origin="http://evil.example")[0] == 403
        assert post(cross_url, fields, origin=origin, host="evil.example")[0] == 421
        assert post(cross_url, {"token": "0" * 64, "decision": "confirm"}, origin=origin)[0] == 409

        # The person declines the third instruction in the browser.
        driver.get(decline_url)
        page = driver.find_element(By.TAG_NAME, "body")
        driver.find_element(By.CSS_SELECTOR, "button[value=decline]").click()
        WebDriverWait(driver, 20).until(gone(page))
        body = body_text_once_it_says(driver, "Declined: nothing will be spent.")
        assert "Confirm and spend" not in body, body

        # The person reads the plan of the second instruction and confirms it in the browser:
        # the model, the candidates, the prompt and the scene's image, loaded.
        driver.get(confirm_url)
        shown = driver.find_element(By.TAG_NAME, "body").text
        for words in (model, "1 per scene", expected, "Maximum cost"):
            assert words in shown, (words, shown)
        images = driver.find_elements(By.CSS_SELECTOR, ".thumbs img")
        assert images, shown
        widths = [driver.execute_script("return arguments[0].naturalWidth", image) for image in images]
        assert all(width > 0 for width in widths), widths
        token = token_of(driver)
        page = driver.find_element(By.TAG_NAME, "body")
        driver.find_element(By.CSS_SELECTOR, "button.confirm").click()
        WebDriverWait(driver, 20).until(gone(page))
        body = body_text_once_it_says(driver, "Confirmed")
        assert "Confirm and spend" not in body, body

        # The same POST again (a replay) is refused: the token was single use.
        status, body = post(confirm_url, {"token": token, "decision": "confirm"}, origin=origin)
        assert status == 409, (status, body)
    finally:
        driver.quit()
    print("confirmation page ok")


if __name__ == "__main__":
    main(*sys.argv[1:6])
