"""The Arrow Flight data service of the app: started once per Streamlit process.

`get_flight()` starts the service on HFT_FLIGHT_HOST:HFT_FLIGHT_PORT over the same services
as the pages and the REST API (`get_services`), so a token revoked on My account is refused
at once. It returns None when HFT_FLIGHT_PORT is 0 or the service cannot start (a warning in
the server log says why; the app runs on without it). Clearing the resource cache stops it.

`flight_lifespan` is for `st.App(lifespan=...)`: the service then starts with the server, not
with the first page visit, and stops when the server does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st

from core.serve.flight import FlightService, start_flight
from pages._shared.accounts import settings
from pages._shared.services import get_services


def stop(service: FlightService | None) -> None:
    if service is not None:
        service.stop()


@st.cache_resource(show_spinner=False, on_release=stop)
def get_flight() -> FlightService | None:
    # Settings alone decide whether it starts: the services open on the first call it serves.
    return start_flight(get_services, settings())


@asynccontextmanager
async def flight_lifespan(app: object) -> AsyncIterator[None]:
    await asyncio.to_thread(get_flight)  # binds a port: blocking, so off the event loop
    try:
        yield None
    finally:
        get_flight.clear()  # on_release stops the service
