"""The cart: anyone can fill it, logged in or not, and it survives the login."""

from collections import Counter
from typing import Annotated, NamedTuple

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from examples.webapp.site import Site, WebSession, redirect

__all__ = ["CATALOGUE", "Item", "cart_routes"]


class Item(NamedTuple):
    name: str
    price_cents: int


CATALOGUE = {
    "tea": Item("Green tea, 100 g", 650),
    "mug": Item("Enamel mug", 1200),
    "honey": Item("Forest honey, 250 g", 890),
}


def cart_routes(site: Site) -> APIRouter:
    """The cart page and its two forms."""
    router = APIRouter()
    Session = Annotated[WebSession, Depends(site.sessions)]

    @router.get("/cart", response_class=HTMLResponse)
    async def cart(request: Request, session: Session) -> HTMLResponse:
        counts = Counter(item for item in session.cart if item in CATALOGUE)
        lines = [(item, CATALOGUE[item], count) for item, count in sorted(counts.items())]
        total = sum(CATALOGUE[item].price_cents * count for item, count in counts.items())
        return site.render(request, session, "cart.html", catalogue=CATALOGUE, lines=lines, total_cents=total)

    @router.post("/cart/add", response_class=RedirectResponse, status_code=303)
    async def add(session: Session, item: Annotated[str, Form()]) -> RedirectResponse:
        if item in CATALOGUE:
            session.cart.append(item)
            session.flash(f"Added {CATALOGUE[item].name}.", "success")
        return redirect("/cart")

    @router.post("/cart/remove", response_class=RedirectResponse, status_code=303)
    async def remove(session: Session, item: Annotated[str, Form()]) -> RedirectResponse:
        if item in session.cart:
            session.cart.remove(item)
        return redirect("/cart")

    return router
