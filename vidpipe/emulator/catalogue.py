"""The store's assets: by ID, in creation order, paged by number or by cursor.

Not locked by itself: the store's lock guards every call.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Iterator

from vidpipe.emulator.objects import ApiError, Asset


class Catalogue:
    """Assets by ID, oldest first. A cursor names the last asset a page returned."""

    def __init__(self) -> None:
        self._assets: dict[str, Asset] = {}
        self._order: list[int] = []  # asset seqs in creation order, for cursor paging
        self._by_seq: dict[int, str] = {}
        self._seq = 0

    def next_seq(self) -> int:
        """The creation number of the next asset."""
        self._seq += 1
        return self._seq

    def get(self, asset_id: str) -> Asset | None:
        return self._assets.get(asset_id)

    def __getitem__(self, asset_id: str) -> Asset:
        return self._assets[asset_id]

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._assets

    def __iter__(self) -> Iterator[Asset]:
        return iter(list(self._assets.values()))

    def add(self, asset: Asset) -> None:
        """Add a new asset (its seq above every other); ValueError when the ID is taken."""
        if asset.id in self._assets:
            raise ValueError(f"asset {asset.id} already exists")
        self._assets[asset.id] = asset
        self._by_seq[asset.seq] = asset.id
        self._order.append(asset.seq)

    def remove(self, asset: Asset) -> None:
        del self._assets[asset.id]
        del self._by_seq[asset.seq]
        del self._order[bisect.bisect_left(self._order, asset.seq)]

    def page(
        self, limit: int, page: int | None, cursor: str | None, upload_id: str | None
    ) -> tuple[list[Asset], str | None]:
        """(up to `limit` assets oldest first, the next cursor or None when none are left).

        After `cursor` when given, else page `page` (1-based); only `upload_id`'s assets
        when given. Deleting assets between pages never skips or repeats one.
        """
        if cursor:
            index = bisect.bisect_right(self._order, _decode_cursor(cursor))
            skip = 0
        else:
            index = 0
            skip = ((page or 1) - 1) * limit
        picked: list[Asset] = []
        while index < len(self._order) and len(picked) < limit:
            asset = self._assets[self._by_seq[self._order[index]]]
            index += 1
            if upload_id is not None and asset.upload_id != upload_id:
                continue
            if skip:
                skip -= 1
                continue
            picked.append(asset)
        more = any(
            upload_id is None or self._assets[self._by_seq[s]].upload_id == upload_id
            for s in self._order[index:]
        )
        return picked, _encode_cursor(picked[-1].seq) if picked and more else None


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"emu:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = raw.partition(":")
        if prefix != "emu":
            raise ValueError(cursor)
        return int(seq)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameters", "cursor is invalid") from exc
