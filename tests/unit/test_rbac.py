from __future__ import annotations

import pytest

from serve_app.auth.rbac import GRANTS, Permission, Role, authorize
from serve_app.auth.tokens import Principal
from serve_app.errors import Forbidden


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_authorize_follows_the_role_table(role: Role, permission: Permission) -> None:
    caller = Principal("alice", role.value)
    if permission in GRANTS[role]:
        authorize(caller, permission)
    else:
        with pytest.raises(Forbidden) as caught:
            authorize(caller, permission)
        assert (caught.value.field, caught.value.rule) == ("role", "permission")


def test_the_issue_roles_hold() -> None:
    assert Permission.INFER in GRANTS[Role.CLINICIAN] & GRANTS[Role.ML_ENGINEER]
    assert Permission.READ_ANY_RESULTS not in GRANTS[Role.CLINICIAN]
    # Issue 4: auditors read the trail and any stored result, and run nothing.
    assert GRANTS[Role.AUDITOR] == {Permission.READ_AUDIT, Permission.READ_ANY_RESULTS}
    assert GRANTS[Role.ADMIN] == set(Permission)


@pytest.mark.parametrize("role", ["", "root", "Admin", "clinician "])
def test_unknown_roles_are_granted_nothing(role: str) -> None:
    for permission in Permission:
        with pytest.raises(Forbidden):
            authorize(Principal("mallory", role), permission)


def test_any_one_of_several_permissions_is_enough() -> None:
    either = (Permission.READ_OWN_RESULTS, Permission.READ_ANY_RESULTS)
    authorize(Principal("carol", "clinician"), *either)
    authorize(Principal("dave", "auditor"), *either)
    with pytest.raises(Forbidden) as caught:
        authorize(Principal("erin", "ml_engineer"), *either)
    assert "results:read-own or results:read-any" in caught.value.detail
