"""Run the bank app under uvicorn: ``python -m examples.bank.serve --port 8000``."""

from __future__ import annotations

import argparse

import uvicorn

from .app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args()
    uvicorn.run(
        create_app(time_scale=args.time_scale), host=args.host, port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
