"""Shared pieces of the fastapi_sessions test suite: the stores under test, managers, the test app and clients.

Each concept has a module of its own; everything a test uses is importable from here.
"""

from tests.support.app import UserSession as UserSession
from tests.support.app import build_app as build_app
from tests.support.app import login_app as login_app
from tests.support.app import view as view
from tests.support.backend import Backend as Backend
from tests.support.backend import Driver as Driver
from tests.support.backend import assert_not_live as assert_not_live
from tests.support.backend import free_port as free_port
from tests.support.backend import port_open as port_open
from tests.support.backend import unavailable as unavailable
from tests.support.browser import BASE_URL as BASE_URL
from tests.support.browser import Browser as Browser
from tests.support.browser import SetCookie as SetCookie
from tests.support.browser import assert_no_new_cookie as assert_no_new_cookie
from tests.support.browser import client as client
from tests.support.browser import parsed_cookies as parsed_cookies
from tests.support.browser import set_cookies as set_cookies
from tests.support.counting_store import CountingStore as CountingStore
from tests.support.harness import Harness as Harness
from tests.support.harness import key_of as key_of
from tests.support.harness import run as run
from tests.support.harness import serve as serve
from tests.support.harness import serve_together as serve_together
from tests.support.harness import stored as stored
from tests.support.manager import OTHER_SECRET as OTHER_SECRET
from tests.support.manager import SECRET as SECRET
from tests.support.manager import FakeClock as FakeClock
from tests.support.manager import make_manager as make_manager
from tests.support.manager import settings as settings
