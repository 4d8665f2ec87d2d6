"""The plugin contract: entry point, discovery, loader, host registration."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pluggy
import pytest

import hftrainer_mogents
from hftrainer_mogents.errors import (
    DuplicateModelError,
    HostNotInstalledError,
    PluginError,
    UnknownModelError,
)
from hftrainer_mogents.zoo import hookimpl, hookspecs, host, loader, plugin
from hftrainer_mogents.zoo.specs import (
    BenchmarkSpec,
    ConverterSpec,
    EvaluatorSpec,
    ModelSpec,
    resolve,
)

HOOK_NAMES = sorted(
    name for name, fn in vars(hookspecs).items() if name.startswith("hftrainer_") and callable(fn)
)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A fresh plugin manager, loaded the same way as the process-wide one."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    if not manager.is_registered(plugin):
        manager.register(plugin, name=plugin.PLUGIN_NAME)
    return manager


class FakePipeline:
    """A stand-in pipeline class for loader tests (the loader only needs from_pretrained)."""

    def __init__(self, path: str, kwargs: dict):
        self.path = path
        self.kwargs = kwargs

    @classmethod
    def from_pretrained(cls, path_or_repo: str, **kwargs):
        return cls(path_or_repo, kwargs)


class FakeBundle:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeEvaluator:
    pass


class FakeZooPlugin:
    """A second plugin that provides one model with a real pipeline class."""

    @hookimpl
    def hftrainer_models(self):
        return [
            ModelSpec(
                name="fake-t2m",
                task="t2m",
                representation="hml263",
                fps=20,
                default_artifact="someone/fake-artifact",
                pipeline=f"{__name__}:FakePipeline",
                bundle=f"{__name__}:FakeBundle",
                evaluators=("fake-eval",),
            )
        ]

    @hookimpl
    def hftrainer_evaluators(self):
        return [
            EvaluatorSpec(
                name="fake-eval", representation="hml263", cls=f"{__name__}:FakeEvaluator"
            )
        ]

    @hookimpl
    def hftrainer_register(self, registries):
        host.register_specs(
            registries,
            models=self.hftrainer_models(),
            evaluators=self.hftrainer_evaluators(),
            plugin="fake",
        )


class ClashingPlugin:
    """Claims the name 'mogents' too."""

    @hookimpl
    def hftrainer_models(self):
        return [
            ModelSpec(
                name="mogents",
                task="t2m",
                representation="hml263",
                fps=20,
                default_artifact="impostor/mogents",
            )
        ]


# ---------------------------------------------------------------- entry point and specs


def test_entry_point_is_installed():
    eps = entry_points(group="hftrainer.plugins")
    ours = [ep for ep in eps if ep.name == "mogents"]
    assert len(ours) == 1, f"entry points in the group: {list(eps)}"
    assert ours[0].value == "hftrainer_mogents.zoo.plugin"
    assert ours[0].load() is plugin


def test_process_plugin_manager_holds_our_plugin_once():
    pm = loader.get_plugin_manager()
    assert pm is loader.get_plugin_manager()
    modules = [p for p in pm.get_plugins() if p is plugin]
    assert len(modules) == 1
    assert pm.get_name(plugin) == "mogents"


def test_list_models_describes_mogents():
    specs = {spec.name: spec for spec in hftrainer_mogents.list_models()}
    spec = specs["mogents"]
    assert spec.task == "t2m"
    assert spec.representation == "hml263"
    assert spec.fps == 20
    assert spec.default_artifact == "ZeyuLing/hftrainer-mogents-humanml3d"
    assert spec.plugin == "mogents"
    assert isinstance(spec.evaluators, tuple)


def _all_specs(pm):
    return [
        *loader.list_models(pm=pm),
        *loader.list_evaluators(pm=pm),
        *loader.list_converters(pm=pm),
        *loader.list_benchmarks(pm=pm),
    ]


def test_every_import_string_resolves(pm):
    checked = 0
    for spec in _all_specs(pm):
        for role, import_string in spec.import_strings().items():
            obj = resolve(import_string)
            assert obj is not None, f"{spec.name}.{role} = {import_string!r}"
            checked += 1
    # the specs list only what exists: every declared name must be real
    for spec in loader.list_models(pm=pm):
        for evaluator in spec.evaluators:
            assert evaluator in {e.name for e in loader.list_evaluators(pm=pm)}, evaluator
    for bench in loader.list_benchmarks(pm=pm):
        assert bench.model in {m.name for m in loader.list_models(pm=pm)}
        assert bench.evaluator in {e.name for e in loader.list_evaluators(pm=pm)}
    assert checked == sum(len(s.import_strings()) for s in _all_specs(pm))


def test_specs_are_frozen():
    spec = plugin.MODELS[0]
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.generation_kwargs["time_steps"] = 3  # type: ignore[index]


@pytest.mark.parametrize(
    "bad",
    [
        "no_colon",
        ":Attr",
        "module:",
        "hftrainer_mogents.does_not_exist:X",
        "hftrainer_mogents:Nope",
    ],
)
def test_resolve_rejects_bad_import_strings(bad):
    with pytest.raises(PluginError, match="import string|cannot import|no attribute"):
        resolve(bad)


def test_discovery_imports_neither_torch_nor_transformers():
    code = textwrap.dedent(
        """
        import sys, json
        import hftrainer_mogents
        import hftrainer_mogents.zoo.plugin
        from hftrainer_mogents.zoo import list_models, list_evaluators, list_converters, list_benchmarks
        names = [m.name for m in list_models()]
        list_evaluators(); list_converters(); list_benchmarks()
        from hftrainer_mogents.zoo import loader
        loader.plugin_info()
        heavy = sorted(m for m in ("torch", "transformers", "numpy", "safetensors") if m in sys.modules)
        print(json.dumps({"names": names, "heavy": heavy}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "mogents" in result["names"]
    assert result["heavy"] == [], f"discovery imported {result['heavy']}"


def _zoo_imports() -> dict[str, set[str]]:
    """Each zoo module's imports of other zoo modules, at any level (function bodies included)."""
    zoo_dir = Path(loader.__file__).parent
    modules = {p.stem for p in zoo_dir.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        tree = ast.parse((zoo_dir / f"{name}.py").read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            prefix = "hftrainer_mogents.zoo."
            found |= {t[len(prefix) :] for t in targets if t.startswith(prefix)} & modules
        graph[name] = found
    return graph


def test_zoo_modules_import_no_cycle():
    graph = _zoo_imports()
    # host.py knows the host's registries and the specs, nothing of plugins or the loader
    assert graph["host"] == {"specs"}
    assert "loader" not in graph["plugin"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph[start]
        )

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert cycles == [], f"zoo modules on an import cycle: {cycles} ({graph})"


def test_register_is_the_loaders():
    import hftrainer_mogents.zoo as zoo

    assert zoo.register is loader.register
    assert not hasattr(host, "register")


# ---------------------------------------------------------------- loader


def test_load_unknown_name_lists_known_ones(pm):
    with pytest.raises(UnknownModelError) as info:
        loader.load("nope", pm=pm)
    message = str(info.value)
    assert "'nope'" in message and "mogents" in message
    assert isinstance(info.value, KeyError)  # generic handlers keep working


def test_load_resolves_pipeline_through_plugins(pm):
    fake = FakeZooPlugin()
    pm.register(fake, name="fake")
    try:
        pipe = loader.load("fake-t2m", "some/path", pm=pm, device="cpu")
        assert isinstance(pipe, FakePipeline)
        assert pipe.path == "some/path" and pipe.kwargs == {"device": "cpu"}
        default = loader.load("fake-t2m", pm=pm)
        assert default.path == "someone/fake-artifact"
        names = [m.name for m in loader.list_models(pm=pm)]
        assert names == sorted(names) and {"fake-t2m", "mogents"} <= set(names)
    finally:
        pm.unregister(fake)


def test_top_level_load_uses_the_process_plugin_manager():
    pm = loader.get_plugin_manager()
    fake = FakeZooPlugin()
    pm.register(fake, name="fake")
    try:
        pipe = hftrainer_mogents.load("fake-t2m", path_or_repo="x/y", dtype="float32")
        assert isinstance(pipe, FakePipeline) and pipe.path == "x/y"
        assert pipe.kwargs == {"dtype": "float32"}
    finally:
        pm.unregister(fake)


def test_duplicate_model_names_are_reported(pm):
    impostor = ClashingPlugin()
    pm.register(impostor, name="impostor")
    try:
        with pytest.raises(DuplicateModelError) as info:
            loader.list_models(pm=pm)
        message = str(info.value)
        assert "'mogents'" in message and "'impostor'" in message
        with pytest.raises(DuplicateModelError):
            loader.get_model_spec("mogents", pm=pm)
        chosen = loader.get_model_spec("mogents", plugin="impostor", pm=pm)
        assert chosen.default_artifact == "impostor/mogents"
        assert loader.get_model_spec("mogents", plugin="mogents", pm=pm).plugin == "mogents"
    finally:
        pm.unregister(impostor)


def test_plugin_returning_wrong_type_is_an_error(pm):
    class Broken:
        @hookimpl
        def hftrainer_models(self):
            return [{"name": "dict-instead-of-spec"}]

    broken = Broken()
    pm.register(broken, name="broken")
    try:
        with pytest.raises(PluginError, match="'broken'.*expected ModelSpec"):
            loader.list_models(pm=pm)
    finally:
        pm.unregister(broken)


def test_load_without_pipeline_says_so(pm):
    class NoPipeline:
        @hookimpl
        def hftrainer_models(self):
            return [ModelSpec("bare", "t2m", "hml263", 20, "a/b")]

    bare = NoPipeline()
    pm.register(bare, name="bare-plugin")
    try:
        with pytest.raises(PluginError, match="declares no pipeline"):
            loader.load("bare", pm=pm)
    finally:
        pm.unregister(bare)


def test_plugin_info_names_hooks_and_provisions(pm):
    infos = {entry["name"]: entry for entry in loader.plugin_info(pm=pm)}
    ours = infos["mogents"]
    assert ours["distribution"] == "hftrainer-mogents"
    assert ours["version"] == hftrainer_mogents.__version__
    assert set(ours["hooks"]) == set(HOOK_NAMES)
    assert ours["models"] == ["mogents"]


# ---------------------------------------------------------------- every hook documented and tested


@pytest.mark.parametrize("hook_name", HOOK_NAMES)
def test_hookspecs_are_documented_and_tested(hook_name):
    spec = getattr(hookspecs, hook_name)
    assert inspect.getdoc(spec), f"{hook_name} needs a docstring"
    assert f"test_hook_{hook_name}" in globals(), f"write test_hook_{hook_name}"


def test_hook_hftrainer_models(pm):
    results = pm.hook.hftrainer_models()
    flat = [spec for specs in results for spec in specs]
    assert all(isinstance(s, ModelSpec) for s in flat)
    assert "mogents" in {s.name for s in flat}


def test_hook_hftrainer_evaluators(pm):
    flat = [spec for specs in pm.hook.hftrainer_evaluators() for spec in specs]
    assert all(isinstance(s, EvaluatorSpec) for s in flat)
    assert [s.name for s in flat] == [s.name for s in plugin.EVALUATORS]


def test_hook_hftrainer_converters(pm):
    flat = [spec for specs in pm.hook.hftrainer_converters() for spec in specs]
    assert all(isinstance(s, ConverterSpec) for s in flat)
    assert [s.name for s in flat] == [s.name for s in plugin.CONVERTERS]


def test_hook_hftrainer_benchmarks(pm):
    flat = [spec for specs in pm.hook.hftrainer_benchmarks() for spec in specs]
    assert all(isinstance(s, BenchmarkSpec) for s in flat)
    assert [s.name for s in flat] == [s.name for s in plugin.BENCHMARKS]


def test_hook_hftrainer_register(pm):
    registries = _mmengine_registries()
    pm.hook.hftrainer_register(registries=registries)
    expected = _expected_registrations(plugin.MODELS, plugin.EVALUATORS)
    assert _registered_names(registries) == expected


# ---------------------------------------------------------------- host registration (mmengine)


def _mmengine_registries():
    from mmengine.registry import Registry

    return {name: Registry(name.lower(), scope="hftrainer") for name in host.REGISTRY_NAMES}


def _registered_names(registries) -> dict[str, set[str]]:
    return {name: set(reg.module_dict) for name, reg in registries.items()}


def _expected_registrations(models, evaluators) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {name: set() for name in host.REGISTRY_NAMES}
    for spec in models:
        if spec.bundle:
            expected["MODEL_BUNDLES"].add(resolve(spec.bundle).__name__)
        if spec.pipeline:
            expected["PIPELINES"].add(resolve(spec.pipeline).__name__)
    for spec in evaluators:
        expected["EVALUATORS"].add(resolve(spec.cls).__name__)
    return expected


def test_host_register_is_idempotent_with_real_mmengine_registries(pm):
    fake = FakeZooPlugin()
    pm.register(fake, name="fake")
    try:
        registries = _mmengine_registries()
        loader.register(registries, pm=pm)
        first = _registered_names(registries)
        expected = _expected_registrations(
            [*plugin.MODELS, *fake.hftrainer_models()],
            [*plugin.EVALUATORS, *fake.hftrainer_evaluators()],
        )
        assert first == expected
        assert "FakeBundle" in first["MODEL_BUNDLES"] and "FakeEvaluator" in first["EVALUATORS"]
        objects = {n: dict(r.module_dict) for n, r in registries.items()}
        loader.register(registries, pm=pm)  # second call changes nothing
        assert {n: dict(r.module_dict) for n, r in registries.items()} == objects
        built = registries["MODEL_BUNDLES"].build(dict(type="FakeBundle", width=3))
        assert isinstance(built, FakeBundle) and built.kwargs == {"width": 3}
    finally:
        pm.unregister(fake)


def test_register_specs_keeps_a_different_class_holding_the_name(caplog):
    registries = _mmengine_registries()

    class FakeBundle:  # the host's own class with the same name
        pass

    registries["MODEL_BUNDLES"].register_module(name="FakeBundle", module=FakeBundle)
    specs = FakeZooPlugin().hftrainer_models()
    done = host.register_specs(registries, models=specs, plugin="fake")
    assert registries["MODEL_BUNDLES"].module_dict["FakeBundle"] is FakeBundle
    assert "MODEL_BUNDLES:FakeBundle" not in done and "PIPELINES:FakePipeline" in done
    assert "already holds 'FakeBundle'" in caplog.text
    forced = host.register_specs(registries, models=specs, plugin="fake", force=True)
    assert forced == ["MODEL_BUNDLES:FakeBundle"]
    assert registries["MODEL_BUNDLES"].module_dict["FakeBundle"] is not FakeBundle


def test_register_specs_missing_registry_is_named():
    with pytest.raises(PluginError, match="needs the host registry 'MODEL_BUNDLES'"):
        host.register_specs({}, models=FakeZooPlugin().hftrainer_models(), plugin="fake")


def _write_fake_host(root: Path) -> None:
    pkg = root / "hftrainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("__version__ = '0.0-test'\n")
    (pkg / "registry.py").write_text(
        "from mmengine.registry import Registry\n"
        "MODEL_BUNDLES = Registry('model_bundle', scope='hftrainer')\n"
        "PIPELINES = Registry('pipeline', scope='hftrainer')\n"
        "EVALUATORS = Registry('evaluator', scope='hftrainer')\n"
    )


def test_host_register_finds_an_installed_host(tmp_path, monkeypatch, pm):
    _write_fake_host(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "hftrainer" or m.startswith("hftrainer.")]:
        monkeypatch.delitem(sys.modules, name)
    assert host.host_installed()
    fake = FakeZooPlugin()
    pm.register(fake, name="fake")
    try:
        loader.register(pm=pm)
        import hftrainer.registry as reg

        assert "FakePipeline" in reg.PIPELINES.module_dict
        assert "FakeEvaluator" in reg.EVALUATORS.module_dict
    finally:
        pm.unregister(fake)
        for name in [m for m in sys.modules if m == "hftrainer" or m.startswith("hftrainer.")]:
            del sys.modules[name]


def test_host_registries_without_host(monkeypatch):
    for name in ("hftrainer", "hftrainer.registry"):  # the import fails, even where it ran
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(HostNotInstalledError, match="not installed"):
        host.host_registries()


def test_registry_builds_the_real_bundle_and_pipeline(pm):
    """dict(type="MoGenTSBundle", ...) through the host registry reaches our class."""
    from hftrainer_mogents.bundle import MoGenTSBundle
    from hftrainer_mogents.config import (
        MaskTransformerConfig,
        MoGenTSConfig,
        ResidualTransformerConfig,
        TextEncoderConfig,
        VQConfig,
    )
    from hftrainer_mogents.pipeline import MoGenTSPipeline

    registries = _mmengine_registries()
    loader.register(registries, pm=pm)
    small = dict(latent_dim=32, ff_size=64, n_layers=1, n_heads=2)
    config = MoGenTSConfig(
        vq=VQConfig(
            width=32,
            depth=1,
            code_dim1d=8,
            nb_code1d=8,
            code_dim2d=8,
            nb_code2d=8,
            num_quantizers=3,
        ),
        mask=MaskTransformerConfig(**small),
        res=ResidualTransformerConfig(**small),
        text_encoder=TextEncoderConfig(width=64, heads=1, layers=1),
    )
    bundle = registries["MODEL_BUNDLES"].build(dict(type="MoGenTSBundle", config=config))
    assert type(bundle) is MoGenTSBundle and bundle.config == config
    pipe = registries["PIPELINES"].build(dict(type="MoGenTSPipeline", bundle=bundle))
    assert type(pipe) is MoGenTSPipeline and pipe.bundle is bundle


# ---------------------------------------------------------------- load_plugins and auto-registration


def test_load_plugins_is_the_documented_call():
    import hftrainer_mogents.zoo as zoo

    assert zoo.load_plugins is loader.load_plugins
    assert zoo.register is loader.load_plugins  # the first version's name, kept


def test_load_plugins_is_idempotent_and_returns_what_it_registered(pm):
    registries = _mmengine_registries()
    done = loader.load_plugins(registries, pm=pm)
    assert done == [
        "EVALUATORS:HumanML263Evaluator",
        "EVALUATORS:MotionStreamer272Evaluator",
        "MODEL_BUNDLES:MoGenTSBundle",
        "PIPELINES:MoGenTSPipeline",
    ]
    objects = {n: dict(r.module_dict) for n, r in registries.items()}
    assert loader.load_plugins(registries, pm=pm) == []
    assert {n: dict(r.module_dict) for n, r in registries.items()} == objects


def test_load_plugins_reports_a_clash_and_keeps_the_holder(pm, caplog):
    registries = _mmengine_registries()

    class MoGenTSBundle:  # e.g. the host's own class of that name
        pass

    registries["MODEL_BUNDLES"].register_module(name="MoGenTSBundle", module=MoGenTSBundle)
    with caplog.at_level("WARNING"):
        done = loader.load_plugins(registries, pm=pm)
    assert "MODEL_BUNDLES:MoGenTSBundle" not in done and "PIPELINES:MoGenTSPipeline" in done
    assert registries["MODEL_BUNDLES"].module_dict["MoGenTSBundle"] is MoGenTSBundle
    assert f"MODEL_BUNDLES already holds 'MoGenTSBundle' from {__name__}" in caplog.text
    assert "hftrainer_mogents.bundle.MoGenTSBundle" in caplog.text


def _write_fake_host_with_bases(root: Path) -> None:
    """A stand-in host: mmengine registries and two abstract base classes."""
    _write_fake_host(root)
    for pkg, module, base, method in (
        ("pipelines", "base_pipeline", "BasePipeline", "__call__"),
        ("evaluation", "base_evaluator", "BaseEvaluator", "compute"),
    ):
        (root / "hftrainer" / pkg).mkdir()
        (root / "hftrainer" / pkg / "__init__.py").write_text("")
        (root / "hftrainer" / pkg / f"{module}.py").write_text(
            "from abc import ABC, abstractmethod\n"
            f"class {base}(ABC):\n"
            "    @abstractmethod\n"
            f"    def {method}(self, *args, **kwargs): ...\n"
        )


def _run_with_fake_host(tmp_path: Path, code: str) -> dict:
    _write_fake_host_with_bases(tmp_path)
    repo = Path(hftrainer_mogents.__file__).resolve().parent.parent
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{repo}"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_zoo_inside_a_running_host_registers_without_a_hand_call(tmp_path):
    result = _run_with_fake_host(
        tmp_path,
        """
        import json, sys
        import hftrainer.registry as reg
        import hftrainer_mogents.zoo
        from hftrainer.pipelines.base_pipeline import BasePipeline
        from hftrainer.evaluation.base_evaluator import BaseEvaluator
        from hftrainer_mogents.bundle import MoGenTSBundle
        from hftrainer_mogents.evaluation.hml263 import HumanML263Evaluator
        from hftrainer_mogents.pipeline import MoGenTSPipeline
        again = hftrainer_mogents.zoo.load_plugins()
        print(json.dumps({
            "bundles": sorted(reg.MODEL_BUNDLES.module_dict),
            "pipelines": sorted(reg.PIPELINES.module_dict),
            "evaluators": sorted(reg.EVALUATORS.module_dict),
            "same": reg.MODEL_BUNDLES.module_dict["MoGenTSBundle"] is MoGenTSBundle,
            "virtual": [issubclass(MoGenTSPipeline, BasePipeline),
                        issubclass(HumanML263Evaluator, BaseEvaluator),
                        issubclass(MoGenTSBundle, BasePipeline)],
            "again": again,
        }))
        """,
    )
    assert result["bundles"] == ["MoGenTSBundle"] and result["pipelines"] == ["MoGenTSPipeline"]
    assert result["evaluators"] == ["HumanML263Evaluator", "MotionStreamer272Evaluator"]
    assert result["same"] and result["virtual"] == [True, True, False]
    assert result["again"] == []


def test_reaching_the_zoo_after_the_host_started_registers(tmp_path):
    """The zoo imported first (host installed, not running: nothing imported), the host later:
    the next call through us registers."""
    result = _run_with_fake_host(
        tmp_path,
        """
        import json, sys
        import hftrainer_mogents, hftrainer_mogents.zoo
        before = "hftrainer" in sys.modules
        import hftrainer.registry as reg
        names = [m.name for m in hftrainer_mogents.list_models()]
        print(json.dumps({"before": before, "names": names,
                          "bundles": sorted(reg.MODEL_BUNDLES.module_dict)}))
        """,
    )
    assert result["before"] is False  # importing the zoo did not import the host
    assert "mogents" in result["names"] and result["bundles"] == ["MoGenTSBundle"]


def test_auto_registration_needs_a_running_host(monkeypatch):
    monkeypatch.delitem(sys.modules, "hftrainer.registry", raising=False)
    calls = []
    monkeypatch.setattr(loader, "load_plugins", lambda *a, **k: calls.append(a) or ["X:Y"])
    assert loader.register_with_running_host() == [] and calls == []


def test_auto_registration_once_per_registries_and_failures_warn(tmp_path, monkeypatch):
    _write_fake_host(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "hftrainer" or m.startswith("hftrainer.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(loader, "_auto_registered", set())
    try:
        import hftrainer.registry as reg

        calls = []
        monkeypatch.setattr(loader, "load_plugins", lambda regs: calls.append(regs) or ["A:B"])
        assert loader.register_with_running_host() == ["A:B"]
        assert loader.register_with_running_host() == []
        assert [set(c) for c in calls] == [set(host.REGISTRY_NAMES)]
        assert calls[0]["PIPELINES"] is reg.PIPELINES
        monkeypatch.setattr(loader, "_auto_registered", set())

        def broken(regs):
            raise PluginError("plugin 'x': cannot import x.y:Z")

        monkeypatch.setattr(loader, "load_plugins", broken)
        with pytest.warns(RuntimeWarning, match="cannot import x.y:Z.*load_plugins\\(\\)"):
            assert loader.register_with_running_host() == []
    finally:
        for name in [m for m in sys.modules if m == "hftrainer" or m.startswith("hftrainer.")]:
            del sys.modules[name]


def test_top_level_load_plugins_is_the_loaders():
    assert hftrainer_mogents.load_plugins is loader.load_plugins
    assert "load_plugins" in hftrainer_mogents.__all__


def test_published_numbers_live_with_their_benchmark():
    from hftrainer_mogents.evaluation.hml263 import benchmark, published
    from hftrainer_mogents.zoo import plugin

    assert benchmark.PUBLISHED_HML263 is published.PUBLISHED_HML263
    assert plugin.PUBLISHED_HML263 is published.PUBLISHED_HML263  # the old path, one release
    (spec,) = plugin.BENCHMARKS
    assert dict(spec.reference) == published.PUBLISHED_HML263 and spec.reference["fid"] == 0.0806
