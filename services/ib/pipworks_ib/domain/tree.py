"""Rules of the partner tree (a closure table holds it; these checks are pure)."""

from __future__ import annotations

from collections.abc import Collection

from pipworks_platform.errors import FailedPrecondition, InvalidArgument


def check_move(partner_id: str, new_parent_id: str | None, descendants: Collection[str]) -> None:
    """A partner may move under any partner outside its own subtree (or become a root).

    ``descendants`` is the partner's subtree including itself.
    """
    if new_parent_id is None:
        return
    if new_parent_id == partner_id:
        raise InvalidArgument.for_field(
            "new_parent_partner_id", "a partner cannot be its own parent", reason="TREE_CYCLE"
        )
    if new_parent_id in descendants:
        raise FailedPrecondition(
            "the new parent is inside the partner's own subtree", reason="TREE_CYCLE"
        )
