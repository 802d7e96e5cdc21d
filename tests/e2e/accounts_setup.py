"""Create the e2e accounts in a data dir before its server starts (run as a subprocess).

Reads {"role": ["username", "password"], ...} as JSON on stdin. Uses the backend's documented
test-only fast Argon2 parameters; the server rehashes them to production strength on the
first login. A separate process, so no Delta handles or writer threads live in pytest's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.config import Settings
from lakehouse import Argon2Params, LakehouseAuthBackend


def main() -> int:
    data_dir = Path(sys.argv[1])
    wanted: dict[str, list[str]] = json.load(sys.stdin)
    s = Settings.from_env({"HFT_DATA_DIR": str(data_dir)})
    backend = LakehouseAuthBackend(
        s.lakehouse_dir,
        secrets_dir=s.secrets_dir,
        argon2_params=Argon2Params.fast_for_tests(),
        allow_weak_hashing_for_tests=True,
    )
    for role, (username, password) in wanted.items():
        backend.register(username, f"{username}@example.test", password)
        if role != "viewer":
            backend.set_role_as_operator(username, role)
    backend.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
