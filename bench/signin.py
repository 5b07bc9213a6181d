"""Sign-in timing: a known email with a wrong password against an unknown email, at the production bcrypt cost.

    .venv/bin/python -m bench.signin --rounds 12 --tries 20

Through members.authenticate on a fresh SQLite database (the work the sign-in event does on the password
threads). Each try comes from its own client address, so the sign-in throttle stays out of the way. Prints the
median and spread of each case and their ratio: an attacker must not tell members' emails from others by time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from projectalgo import members
from projectalgo.db import make_engine, session_scope
from projectalgo.migrations import upgrade_to_head

PASSWORD = "correct horse battery"


def _time_sign_in(engine, email: str, client: str, rounds: int) -> float:
    started = time.perf_counter()
    try:
        with session_scope(engine) as session:
            members.authenticate(session, email=email, password="wrong password!", client=client, bcrypt_rounds=rounds)
    except members.AccountError as refusal:
        assert str(refusal) == members.SIGN_IN_FAILED, refusal
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--tries", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade_to_head(url)
        engine = make_engine(url)
        with session_scope(engine) as session:
            members.create_admin(
                session,
                name="Known",
                email="known@example.com",
                password=PASSWORD,
                bcrypt_rounds=args.rounds,
                default_uses=5,
            )
        _time_sign_in(engine, "warm-up@example.com", "warm-up", args.rounds)  # the dummy hash is made once
        times: dict[str, list[float]] = {"known email": [], "unknown email": []}
        for n in range(args.tries):  # interleaved, so machine noise hits both alike
            times["known email"].append(_time_sign_in(engine, "known@example.com", f"k{n}", args.rounds))
            times["unknown email"].append(_time_sign_in(engine, f"nobody{n}@example.com", f"u{n}", args.rounds))
        engine.dispose()
    medians = {case: statistics.median(values) for case, values in times.items()}
    for case, values in times.items():
        low, high = min(values) * 1000, max(values) * 1000
        print(f"{case:14} median {medians[case] * 1000:7.1f} ms  min {low:7.1f}  max {high:7.1f}")
    ratio = medians["unknown email"] / medians["known email"]
    print(f"unknown/known median ratio: {ratio:.3f} (bcrypt cost {args.rounds}, {args.tries} tries each)")


if __name__ == "__main__":
    main()
