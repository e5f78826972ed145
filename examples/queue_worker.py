"""A queue worker on asyncio: every job is resolved in its own scope.

Two workers take jobs from an ``asyncio.Queue``. Each job runs ``handle`` through the
container: the database is app-scoped (opened once, closed when the container exits),
the transaction is a request-scoped ``yield`` dependency (committed, or rolled back
when the handler raises), and the user and quota lookups run concurrently.

Run it with ``python examples/queue_worker.py``; it processes five jobs and exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from anydepends import Container, Depends


@dataclass
class Settings:
    dsn: str = "memory://jobs"
    max_text: int = 12


def get_settings() -> Settings:
    return Settings()


@dataclass
class Database:
    """A stand-in for a connection pool."""

    dsn: str
    users: dict[int, str] = field(default_factory=lambda: {1: "ada", 2: "grace"})
    committed: list[str] = field(default_factory=list)

    async def fetch_user(self, user_id: int) -> str:
        await asyncio.sleep(0.01)  # a round trip
        return self.users[user_id]

    async def fetch_quota(self, user_id: int) -> int:
        await asyncio.sleep(0.01)  # another one, at the same time
        return 3 if user_id == 2 else 10


async def get_db(
    settings: Annotated[Settings, Depends(get_settings, scope="app")],
) -> AsyncIterator[Database]:
    db = Database(settings.dsn)
    print(f"db: connected to {db.dsn}")
    try:
        yield db
    finally:
        print(f"db: closed after {len(db.committed)} commits")


# One alias, used everywhere: the database lives as long as the container.
DB = Annotated[Database, Depends(get_db, scope="app")]


async def get_user(user_id: int, db: DB) -> str:
    return await db.fetch_user(user_id)


async def get_quota(user_id: int, db: DB) -> int:
    return await db.fetch_quota(user_id)


async def transaction(db: DB) -> AsyncIterator[list[str]]:
    """A unit of work: committed when the handler returns, rolled back if it raises."""
    pending: list[str] = []
    try:
        yield pending
    except Exception as exc:
        print(f"  rollback: {exc}")
        raise
    db.committed.extend(pending)


@dataclass
class Job:
    id: int
    user_id: int
    text: str


class QuotaExceeded(Exception):
    pass


async def handle(
    job: Job,
    user: Annotated[str, Depends(get_user)],
    quota: Annotated[int, Depends(get_quota)],
    tx: Annotated[list[str], Depends(transaction)],
) -> str:
    if len(job.text.split()) > quota:
        msg = f"job {job.id}: {user} may send {quota} words"
        raise QuotaExceeded(msg)
    tx.append(job.text)
    return f"job {job.id}: {user} says {job.text!r}"


async def worker(
    name: str, container: Container, jobs: asyncio.Queue[Job | None]
) -> None:
    while (job := await jobs.get()) is not None:
        try:
            result = await container.call(handle, job=job, user_id=job.user_id)
        except QuotaExceeded as exc:
            print(f"{name}: failed: {exc}")
        else:
            print(f"{name}: {result}")


async def main() -> None:
    jobs: asyncio.Queue[Job | None] = asyncio.Queue()
    for job in [
        Job(1, 1, "hello"),
        Job(2, 2, "hi there"),
        Job(3, 2, "this one is far too long"),
        Job(4, 1, "bye"),
        Job(5, 2, "ok"),
    ]:
        jobs.put_nowait(job)
    async with Container() as container:
        container.compile(handle)  # check the whole graph before taking any job
        workers = [worker(f"worker-{i}", container, jobs) for i in (1, 2)]
        for _ in workers:
            jobs.put_nowait(None)  # one stop signal per worker
        await asyncio.gather(*workers)


if __name__ == "__main__":
    asyncio.run(main())
