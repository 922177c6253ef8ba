"""The rule table: which identity and permission every route of the tracking server needs.

(H2 builds this module; other parts add their routes' rules in their marked region of RULES.)
"""

from __future__ import annotations

from typing import Any

RULES: dict[str, Any] = {
    # -- H2: REST, ajax, artifacts, UI pages and data, static, health
    # -- end H2
    # -- H3: auth API
    # -- end H3
    # -- H4: UI login/account/admin
    # -- end H4
    # -- H5: server options
    # -- end H5
    # -- U: UI charts
    # -- end U
}
