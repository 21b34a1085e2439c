"""A host application mounting the router under `/gov`, as mission control does, served by
uvicorn: `python host_app.py PORT`. The kernel is configured by `IRGOV_*` variables."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from irgov_policy.http import create_router
from irgov_policy.kernel import Governance

if __name__ == "__main__":
    governance = Governance.from_config()
    app = FastAPI(title="host")
    app.include_router(create_router(governance), prefix="/gov")
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
