"""The emulator's test hooks on its state: seed assets as Mux would hold them, force an
asset's or a track's state, make assets vanish or fail, expire an upload. A part of
`vidpipe.emulator.Emulator` (which mixes it in); no webhook is sent for any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vidpipe.emulator.masters import MasterAccess
from vidpipe.emulator.objects import ApiError
from vidpipe.emulator.store import Store


class StateHooks:
    """Hooks of `Emulator` that set its state directly (its `_store` and `master_access`)."""

    _store: Store
    master_access: MasterAccess

    def seed_asset(
        self,
        passthrough: str | None = None,
        status: str = "ready",
        created_at: int | None = None,
        playback_policies: Iterable[str] = ("public",),
        asset_id: str | None = None,
        upload_id: str | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Add an asset directly, with no webhook; returns its JSON. Its status stays put.

        A seeded asset has a public playback ID unless `playback_policies` says otherwise
        (`()` for none). `settings` take the other asset settings: see `seed_assets`.
        """
        return self.seed_assets(
            1,
            lambda _: passthrough,
            status=status,
            created_at=created_at,
            playback_policies=playback_policies,
            asset_ids=[asset_id] if asset_id else None,
            upload_id=upload_id,
            **settings,
        )[0]

    def seed_assets(
        self,
        n: int,
        passthrough_fn: Callable[[int], str | None] = lambda _: None,
        status: str = "ready",
        created_at: int | None = None,
        playback_policies: Iterable[str] = ("public",),
        *,
        asset_ids: list[str] | None = None,
        upload_id: str | None = None,
        video_quality: str | None = None,
        max_resolution_tier: str | None = None,
        normalize_audio: bool = False,
        test: bool = False,
        meta: dict[str, str] | None = None,
        generated_subtitles: Iterable[str | dict[str, Any]] = (),
        static_renditions: Iterable[str | dict[str, Any]] = (),
        errors: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Add `n` assets at once (passthrough_fn(i) for asset i); returns their JSON.

        The settings are validated as Mux validates them (ValueError otherwise).
        `generated_subtitles` and `static_renditions` take language codes / resolutions, or
        the objects Mux takes (`{"language_code", "name"}`, `{"resolution"}`). An errored
        asset shows `errors` (`{"type", "messages"}`; default: Mux's `invalid_input`).
        """
        raw: dict[str, Any] = {
            "playback_policies": list(playback_policies),
            "normalize_audio": normalize_audio,
            "test": test,
        }
        if video_quality is not None:
            raw["video_quality"] = video_quality
        if max_resolution_tier is not None:
            raw["max_resolution_tier"] = max_resolution_tier
        if meta is not None:
            raw["meta"] = meta
        subtitles = [{"language_code": s} if isinstance(s, str) else s for s in generated_subtitles]
        if subtitles:
            raw["inputs"] = [{"generated_subtitles": subtitles}]
        renditions = [{"resolution": r} if isinstance(r, str) else r for r in static_renditions]
        if renditions:
            raw["static_renditions"] = renditions
        return self._store.seed_assets(
            n,
            passthrough_fn,
            settings=raw,
            status=status,
            created_at=created_at,
            asset_ids=asset_ids,
            upload_id=upload_id,
            errors=errors,
        )

    def delete_asset_silently(self, asset_id: str) -> None:
        """Make an asset vanish without a webhook (as if deleted elsewhere, event lost)."""
        try:
            self._store.delete_asset(asset_id, notify=False)
        except ApiError as exc:
            raise KeyError(asset_id) from exc
        self.master_access.forget(asset_id)

    def set_asset_status(self, asset_id: str, status: str) -> None:
        """Force an asset's status (preparing|ready|errored); it then stays there."""
        self._store.set_asset_status(asset_id, status)

    def fail_next_assets(self, n: int = 1) -> None:
        """The next `n` assets created (from uploads or URLs) become errored, not ready."""
        self._store.fail_next_assets(n)

    def set_track_status(self, asset_id: str, language_code: str, status: str) -> None:
        """Set the status (preparing|ready|errored) of an asset's generated subtitle track.

        Generated subtitle tracks stay `preparing` otherwise (as they often still are when
        Mux reports the asset ready); an asset that errors takes its tracks with it.
        """
        self._store.set_track_status(asset_id, language_code, status)

    def expire_upload(self, upload_id: str) -> None:
        """Make a waiting upload time out now; its URL then answers 404."""
        self._store.expire_upload(upload_id)
