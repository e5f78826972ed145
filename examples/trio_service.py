"""A trio service: messages from a memory channel, each resolved in its own scope.

A producer sends messages into a ``trio`` memory channel; a consumer starts one task
per message, and each task opens a scope with the message in its *context*, so any
dependable that declares a ``Message`` parameter receives it by type (the way FastAPI
injects ``Request``). Rendering and the recipient lookup run concurrently; delivery is
throttled by ``max_concurrency`` across all scopes of the container.

Run it with ``python examples/trio_service.py``; it delivers six messages and exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import trio

from anydepends import Container, Depends


@dataclass(frozen=True)
class Message:
    id: int
    to: str
    template: str


class Templates:
    """App-scoped: loaded once, shared by every message."""

    def __init__(self) -> None:
        self.bodies = {"welcome": "Welcome, {name}!", "reminder": "Hi {name}, ping."}


async def load_templates() -> AsyncIterator[Templates]:
    print("templates: loaded")
    yield Templates()
    print("templates: unloaded")


TemplatesDep = Annotated[Templates, Depends(load_templates, scope="app")]


async def lookup_name(message: Message) -> str:
    await trio.sleep(0.01)  # a directory service
    return message.to.split("@")[0].title()


async def render(message: Message, templates: TemplatesDep) -> str:
    await trio.sleep(0.01)  # while lookup_name waits too
    return templates.bodies[message.template]


class Outbox:
    """Counts how many deliveries are in flight at once."""

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self.sent: list[str] = []


async def get_outbox() -> Outbox:
    return Outbox()


OutboxDep = Annotated[Outbox, Depends(get_outbox, scope="app")]


async def smtp_connection(outbox: OutboxDep) -> AsyncIterator[Outbox]:
    # At most two connections at once, across all scopes: the permit is held until
    # this dependency's teardown.
    outbox.active += 1
    outbox.most = max(outbox.most, outbox.active)
    try:
        yield outbox
    finally:
        outbox.active -= 1


async def deliver(
    message: Message,
    name: Annotated[str, Depends(lookup_name)],
    body: Annotated[str, Depends(render)],
    smtp: Annotated[Outbox, Depends(smtp_connection, max_concurrency=2)],
) -> str:
    await trio.sleep(0.02)  # sending
    text = f"#{message.id} to {message.to}: {body.format(name=name)}"
    smtp.sent.append(text)
    return text


async def handle_one(container: Container, message: Message) -> None:
    async with container.scope(context={Message: message}) as scope:
        print(await scope.call(deliver))


async def producer(send: trio.MemorySendChannel[Message]) -> None:
    async with send:
        for i, (to, template) in enumerate(
            [
                ("ada@example.com", "welcome"),
                ("grace@example.com", "reminder"),
                ("linus@example.com", "welcome"),
                ("barbara@example.com", "reminder"),
                ("ken@example.com", "welcome"),
                ("guido@example.com", "reminder"),
            ],
            start=1,
        ):
            await send.send(Message(i, to, template))


async def consumer(
    container: Container, receive: trio.MemoryReceiveChannel[Message]
) -> None:
    async with receive, trio.open_nursery() as nursery:
        async for message in receive:
            nursery.start_soon(handle_one, container, message)


async def main() -> None:
    async with Container(context_types=[Message]) as container:
        send, receive = trio.open_memory_channel[Message](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer, send)
            nursery.start_soon(consumer, container, receive)
        outbox = await container.call(get_outbox_for_report)
        print(f"sent {len(outbox.sent)}, at most {outbox.most} connections at once")


async def get_outbox_for_report(outbox: OutboxDep) -> Outbox:
    return outbox


if __name__ == "__main__":
    trio.run(main)
