"""The tokens identity issues and every other service checks, kept in memory.

Its own module because two layers share it: identity's handlers issue tokens, and the authentication step
in front of every other service (authentication.py) looks them up, or throws them all away for the
`revoke_tokens_every` knob.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    project: str | None  # None: an unscoped token, which no service accepts
    user_id: str
    username: str
    expires_at: float  # epoch seconds


class TokenStore:
    """Issued tokens, in memory: a restarted simulator forgets them and clients re-authenticate (401)."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def issue(self, project: str | None, user_id: str, username: str, lifetime_s: int, now: float) -> Token:
        """A new token valid `lifetime_s` from `now` (the simulator's clock, epoch seconds)."""
        token = Token(secrets.token_hex(16), project, user_id, username, now + lifetime_s)
        with self._lock:
            self._tokens[token.id] = token
        return token

    def find(self, token_id: str, now: float) -> Token | None:
        """The token if it exists and has not expired at `now` (the simulator's clock: moving the clock
        forward past a token's expiry expires it, as waiting would)."""
        with self._lock:
            token = self._tokens.get(token_id)
            if token is not None and token.expires_at <= now:
                del self._tokens[token_id]
                return None
            return token
