"""The baseline for bench/ingest.py: a bare FastAPI endpoint that only parses and validates a snapshot body."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from projectalgo import snapshots
from projectalgo.clock import utcnow

app = FastAPI()


@app.post("/api/v1/strategy/")
async def ingest(request: Request) -> JSONResponse:
    snapshots.validate(snapshots.read_body(await request.body()), utcnow())
    return JSONResponse({"status": True}, status_code=201)
