"""How the SSH side turns failures inside invoke's threads into one-line hostout errors."""

from __future__ import annotations

from invoke.exceptions import ThreadException
from invoke.util import ExceptionWrapper

from collective.hostout.errors import AuthError
from collective.hostout.remote.ssh.connection import _hostout_error


def test_a_hostout_error_in_the_sudo_watchers_thread_comes_out_as_itself():
    # e.g. sudo asks for a password, and there is none to give (no option, no terminal)
    error = AuthError("a password is needed for deploy@h:22", host="h")
    wrapped = ThreadException([ExceptionWrapper({}, AuthError, error, None)])
    assert _hostout_error(wrapped) is error
    other = ThreadException([ExceptionWrapper({}, ValueError, ValueError("bug"), None)])
    assert _hostout_error(other) is None
