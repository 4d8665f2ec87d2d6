"""Typed errors refine the builtins they stand for."""

from __future__ import annotations

import pytest

from hftrainer_mogents import errors


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.ArtifactNotFoundError, FileNotFoundError),
        (errors.ArtifactFormatError, ValueError),
        (errors.ChecksumMismatchError, errors.ArtifactFormatError),
        (errors.HubUnavailableError, ConnectionError),
        (errors.InvalidInputError, ValueError),
        (errors.MissingDependencyError, ImportError),
        (errors.HostNotInstalledError, ImportError),
        (errors.UnknownModelError, KeyError),
        (errors.UnknownRepresentationError, KeyError),
        (errors.DuplicateModelError, RuntimeError),
        (errors.PluginError, RuntimeError),
        (errors.NonFiniteOutputError, ArithmeticError),
    ],
    ids=lambda c: c.__name__,
)
def test_error_hierarchy(cls, builtin):
    assert issubclass(cls, errors.MoGenTSError)
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("boom")


def test_all_lists_every_error():
    defined = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, errors.MoGenTSError)
    }
    assert defined == set(errors.__all__)


def test_unknown_model_error_message_is_not_quoted():
    assert str(errors.UnknownModelError("unknown model 'x'")) == "unknown model 'x'"
