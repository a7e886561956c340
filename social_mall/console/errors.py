"""Console errors (codes; the edge writes the words)."""

from __future__ import annotations

from social_mall.errors import MallError


class InvalidInputError(MallError):
    """A form or JSON field failed validation."""

    code = "invalid_input"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field, self.problem = field, problem


class ConflictError(MallError):
    code = "conflict"

    def __init__(self, what: str, key: object) -> None:
        super().__init__(what, key)
        self.what, self.key = what, key


class ForbiddenError(MallError):
    code = "forbidden"

    def __init__(self, perm: str) -> None:
        super().__init__(perm)
        self.perm = perm


class CredentialsChangedError(MallError):
    """The admin's credentials changed (password reset, role change, disabled) after the
    session acting for them was opened: it has ended."""

    code = "credentials_changed"

    def __init__(self, admin_id: int) -> None:
        super().__init__(admin_id)
        self.admin_id = admin_id
