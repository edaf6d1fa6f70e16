"""A review API server for the durability test, started fast: this process imports
everything once, then forks one server child per line read on stdin (a port number) and
prints the child's pid. The test SIGKILLs the children; nothing here cleans up after them
on purpose (that is what the test checks the database survives)."""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    db, taxonomy_file = sys.argv[1], sys.argv[2]
    import uvicorn

    from taxonomist.api import ApiSettings, create_app
    from taxonomist.api.review_routes import review_router
    from taxonomist.review import ReviewStore
    from taxonomist.taxonomy_loaders import load_taxonomy

    # opened (and migrated) once here; each child drops the inherited connections and opens
    # its own, as SQLAlchemy advises after a fork
    store = ReviewStore(db, load_taxonomy(taxonomy_file))
    store.engine.dispose()
    app = create_app(ApiSettings(open_access=True, web=False), routers=[review_router(store)])
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        port = int(line)
        pid = os.fork()
        if pid == 0:  # the server
            store.engine.dispose(close=False)
            uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
            os._exit(0)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
