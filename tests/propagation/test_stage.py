"""Propagator factory checks."""

from __future__ import annotations

import pytest


def test_unknown_gcn_option_is_an_error() -> None:
    from wsss.errors import WsssError
    from wsss.propagation.infer import create_propagator

    with pytest.raises(WsssError, match="gcn has no option"):
        create_propagator("gcn", grpah="phi")
