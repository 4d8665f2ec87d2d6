"""``HostPipelineMixin``: the host's pipeline conventions on any class built as
``cls(bundle, **kwargs)``, checked with stand-in bundle and pipeline classes (no fixtures)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from hftrainer_mogents.errors import ArtifactNotFoundError, InvalidInputError
from hftrainer_mogents.host_compat import HostPipelineMixin


class FakeBundle:
    """Records how it was built."""

    def __init__(self, how: str, *args: Any, **kwargs: Any) -> None:
        self.how, self.args, self.kwargs = how, args, kwargs
        self.evaluated = False
        self.loaded: dict[str, Any] | None = None

    @classmethod
    def from_pretrained(cls, path: Any, **kwargs: Any) -> FakeBundle:
        return cls("pretrained", path, **kwargs)

    @classmethod
    def from_config(cls, config: Any) -> FakeBundle:
        return cls("config", config)

    def load_state_dict_selective(self, state: dict[str, Any], **options: Any) -> None:
        self.loaded = {"keys": sorted(state), **options}

    def eval(self) -> FakeBundle:
        self.evaluated = True
        return self


class OtherBundle(FakeBundle):
    pass


class FakePipeline(HostPipelineMixin):
    BUNDLE_CLS = FakeBundle

    def __init__(self, bundle: FakeBundle, **kwargs: Any) -> None:
        self.bundle, self.kwargs = bundle, kwargs

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: Any = "default/repo",
        pretrained_model_name_or_path: Any = None,
        *,
        bundle_cls: type | None = None,
        bundle_kwargs: dict[str, Any] | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        device: str | None = None,
    ) -> FakePipeline:
        options = {"revision": revision, "local_files_only": local_files_only}
        host = cls._host_from_pretrained(
            path_or_repo_id,
            pretrained_model_name_or_path,
            bundle_cls,
            options,
            bundle_kwargs,
            device=device,
        )
        if host is not None:
            return host
        return cls(cls.BUNDLE_CLS.from_pretrained(path_or_repo_id, **options), ours=True)


def test_the_hosts_form_passes_only_the_options_given():
    pipe = FakePipeline.from_pretrained(OtherBundle, "some/path", revision="v1", device="cpu")
    assert type(pipe.bundle) is OtherBundle and pipe.bundle.evaluated
    # local_files_only stayed at its default, so the host's bundle class never sees it
    assert pipe.bundle.args == ("some/path",) and pipe.bundle.kwargs == {"revision": "v1"}
    assert pipe.kwargs == {"device": "cpu"}
    by_keyword = FakePipeline.from_pretrained(
        "some/path", bundle_cls=OtherBundle, bundle_kwargs={"local_files_only": True}
    )
    assert type(by_keyword.bundle) is OtherBundle
    assert by_keyword.bundle.kwargs == {"local_files_only": True}


def test_our_form_is_left_to_the_caller():
    pipe = FakePipeline.from_pretrained("some/path", revision="v2")
    assert pipe.kwargs == {"ours": True} and pipe.bundle.args == ("some/path",)
    assert pipe.bundle.kwargs == {"revision": "v2", "local_files_only": False}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("p",), {"revision": "a", "bundle_kwargs": {"revision": "b"}}, r"\['revision'\] given"),
        ((OtherBundle, "p"), {"bundle_cls": OtherBundle}, "given twice"),
        ((OtherBundle,), {}, "artifact path is missing"),
        (("p", "q"), {}, "only when the first is a bundle class"),
    ],
    ids=["clash", "class-twice", "no-path", "two-paths"],
)
def test_ambiguous_calls_are_refused(args, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        FakePipeline.from_pretrained(*args, **kwargs)


def test_from_config_takes_a_class_or_a_config_first():
    built = FakePipeline.from_config(OtherBundle, {"width": 8}, flag=1)
    assert type(built.bundle) is OtherBundle and built.bundle.args == ({"width": 8},)
    assert built.bundle.evaluated and built.kwargs == {"flag": 1}
    alone = FakePipeline.from_config({"width": 4})
    assert type(alone.bundle) is FakeBundle and alone.bundle.args == ({"width": 4},)
    with pytest.raises(InvalidInputError, match="is not a bundle class"):
        FakePipeline.from_config({"width": 4}, {"width": 4})


def test_from_checkpoint_loads_the_hosts_checkpoint(tmp_path):
    folder = tmp_path / "checkpoint-iter_1"
    folder.mkdir()
    torch.save({"vq_model": {}, "__bundle_params__": {}}, folder / "model.pt")
    pipe = FakePipeline.from_checkpoint(
        None, {"width": 2}, folder, exclude_bundle_keys=("mean",), strict=True, flag=2
    )
    assert type(pipe.bundle) is FakeBundle and pipe.bundle.evaluated
    assert pipe.bundle.loaded == {
        "keys": ["__bundle_params__", "vq_model"],
        "strict": True,
        "exclude_bundle_keys": ["mean"],
    }
    assert pipe.kwargs == {"flag": 2}
    with pytest.raises(ArtifactNotFoundError, match="holds no model.pt"):
        FakePipeline.from_checkpoint(OtherBundle, {}, tmp_path)
