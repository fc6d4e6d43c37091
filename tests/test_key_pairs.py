"""The tests share one SP key pair per session (see conftest); ``own_keys`` opts out of it."""

from __future__ import annotations

import pytest


def test_connections_share_the_sessions_sp_key_pair(make_account, make_connection):
    account = make_account()
    first, second = make_connection(account), make_connection(account)
    assert first.sp_private_key_pem() == second.sp_private_key_pem()
    assert first.sp_certificate == second.sp_certificate


@pytest.mark.own_keys
def test_each_new_connection_gets_its_own_sp_key_pair(make_account, make_connection):
    account = make_account()
    first, second = make_connection(account), make_connection(account)
    assert first.sp_private_key_pem() != second.sp_private_key_pem()
    assert first.sp_certificate != second.sp_certificate
