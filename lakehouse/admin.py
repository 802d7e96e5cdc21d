"""Administration: list accounts, change roles, disable accounts, all sessions, key rotation.

Every operation takes the ACTING user first and checks that user's current role in the users
table (deny by default), not the role field of the object passed in. The last active admin
can be neither demoted nor disabled.
"""

from __future__ import annotations

from typing import Any

from lakehouse import validate
from lakehouse.access_tokens import AccessTokens
from lakehouse.accounts import Account, Accounts
from lakehouse.authn import Authentication
from lakehouse.errors import InvalidInput, NotFound
from lakehouse.models import User


class Admin:
    def __init__(self, accounts: Accounts, authn: Authentication, tokens: AccessTokens) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.authn = authn
        self.tokens = tokens

    def list_users(self, acting_user: User) -> list[User]:
        self.accounts.require_role(acting_user, "admin", "list_users")
        return sorted(
            (a.public() for a in self.accounts.by_id.values()), key=lambda u: u.username.casefold()
        )

    def set_role(self, acting_user: User, user_id: str, role: str) -> User:
        new_role = validate.role(role)
        actor = self.accounts.require_role(acting_user, "admin", "set_role")
        with self.store.users.writer():  # check and change under one lock
            acc = self.accounts.get(user_id)
            only = self.accounts.active_admins() == {acc.user_id}
            if acc.role == "admin" and new_role != "admin" and only:
                raise InvalidInput("this is the last admin; make another admin first")
            return self._apply_role(acc, new_role, actor.user_id)

    def set_role_as_operator(self, username: str, role: str) -> User:
        """Change a role from the shell (`hfthot admin set-role`); audited with actor `cli`."""
        new_role = validate.role(role)
        with self.store.users.writer():
            acc = self.accounts.find(username)
            if acc is None:
                raise NotFound(f"no account named {username!r}")
            return self._apply_role(acc, new_role, "cli")

    def _apply_role(self, acc: Account, new_role: str, actor_id: str) -> User:
        self.store.audit.record(
            "set_role",
            "success",
            user_id=acc.user_id,
            actor_id=actor_id,
            detail={"from": acc.role, "to": new_role},
        )
        return self.accounts.update(acc, role=new_role).public()

    def disable_user(self, acting_user: User, user_id: str, disabled: bool = True) -> User:
        """Disable (log out everywhere, revoke every access token) or re-enable an account."""
        flag = validate.flag(disabled, "disabled")
        actor = self.accounts.require_role(acting_user, "admin", "disable_user")
        with self.store.users.writer():  # check and change under one lock
            acc = self.accounts.get(user_id)
            if flag and acc.role == "admin" and self.accounts.active_admins() == {acc.user_id}:
                raise InvalidInput("this is the last admin; make another admin first")
            self.store.audit.record(
                "disable_user" if flag else "enable_user",
                "success",
                user_id=acc.user_id,
                actor_id=actor.user_id,
            )
            acc = self.accounts.update(acc, disabled=flag)
        if flag:
            self.authn.revoke(self.authn.session_ids_of(acc.user_id), "account disabled")
            self.tokens.revoke_all(acc.user_id, "account disabled", actor_id=actor.user_id)
        self.accounts.refresh()
        return self.accounts.by_id[acc.user_id].public()

    def list_all_sessions(self, acting_user: User) -> list[dict[str, Any]]:
        """Every live session (admin)."""
        self.accounts.require_role(acting_user, "admin", "list_all_sessions")
        out: list[dict[str, Any]] = []
        for uid, acc in list(self.accounts.by_id.items()):
            for s in self.authn.list_sessions(uid):
                out.append({"user_id": uid, "username": acc.username, **s})
        return out

    def rotate_token_key(self) -> str:
        """New JWT signing key (kid); the previous key stays valid, older ones retire."""
        self.store.audit.record("rotate_token_key", "success", actor_id="cli")
        kid = self.store.jwt_ring.rotate()
        self.authn.forget_keys()
        return kid
