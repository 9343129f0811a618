"""A GGUF chat model through archer's own path: `archer.pretrained.convert` (what `model=smollm2`
runs on SmolLM2's file) to a Hugging Face folder, `load_pretrained`, the chat template, and
sampling that ends each response at the chat EOS (`<|im_end|>`), with both rollout engines."""

from __future__ import annotations

import pytest
import torch

from archer.data import ChatTemplate
from archer.models import load_pretrained
from archer.pretrained import convert
from archer.rollout import HFRolloutEngine, LeanRolloutEngine
from archer.types import Sample
from tests.gguf_fixture import write_tiny_gguf

pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("gguf")
    convert(write_tiny_gguf(work / "tiny-chat.Q8_0.gguf"), work / "hf")
    return work / "hf"


def test_a_gguf_file_converts_to_a_float32_llama_folder_with_its_tokenizer_and_template(chat_model_dir):
    import gguf

    model, tokenizer = load_pretrained(str(chat_model_dir), "float32")
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert "quantization_config" not in model.config.to_dict()  # a plain model: it saves and trains
    assert (tokenizer.eos_token, tokenizer.eos_token_id, model.config.num_key_value_heads) == ("<|im_end|>", 2, 1)
    # the weights are the file's, dequantised: the embedding table equals the GGUF tensor's values
    reader = gguf.GGUFReader(str(chat_model_dir.parent / "tiny-chat.Q8_0.gguf"))
    stored = next(t for t in reader.tensors if t.name == "token_embd.weight")
    expected = torch.from_numpy(gguf.dequantize(stored.data, stored.tensor_type).copy()).reshape(model.get_input_embeddings().weight.shape)
    assert torch.equal(model.get_input_embeddings().weight.detach(), expected)
    prompt = ChatTemplate(instruction="").text(Sample("a", "What is 6*7?", "42"), tokenizer)
    assert prompt == "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(tokenizer.encode(" the cat")) == " the cat"


@pytest.fixture(scope="module")
def taught_to_answer_42(chat_model_dir):
    """The converted model, fitted to answer every prompt with "42" then the chat EOS."""
    answer = "42"
    model, tokenizer = load_pretrained(str(chat_model_dir), "float32")
    template = ChatTemplate(instruction="")
    prompts = [template.encode(Sample(str(i), text, answer), tokenizer) for i, text in enumerate(["What is 6*7?", "Say it."])]
    target = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(150):
        loss = 0.0
        for ids in prompts:
            full = torch.tensor([ids + target])
            labels = full.clone()
            labels[:, : len(ids)] = -100
            loss = loss + model(input_ids=full, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer, prompts, target


@pytest.mark.parametrize("engine_class", [LeanRolloutEngine, HFRolloutEngine])
def test_responses_end_at_the_chat_eos_and_nothing_after_it_counts(taught_to_answer_42, engine_class):
    model, tokenizer, prompts, target = taught_to_answer_42
    engine = engine_class(max_new_tokens=12, temperature=1.0, top_k=1).bind(tokenizer)
    batch = engine.generate(model, prompts, n=2)
    lengths = batch.response_mask.sum(-1).tolist()
    assert lengths == [len(target)] * 4  # "4", "2", <|im_end|>: the EOS is the last response token
    for row in range(4):
        assert batch.response_ids[row, : len(target)].tolist() == target
        assert batch.response_mask[row, len(target):].sum() == 0  # padding after EOS is not response
    assert batch.texts == ["42"] * 4 and not batch.truncated.any()


def test_archer_eval_runs_a_llama_chat_model_at_the_default_bfloat16_on_your_own_file(chat_model_dir, tmp_path):
    """The default `model.dtype` (bfloat16) samples a real Llama layout through the lean sampler."""
    import json

    from hydra import compose, initialize_config_dir

    from archer.evaluate import evaluate
    from archer.train import config_dir

    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(json.dumps({"id": str(i), "problem": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n"
                                for i in range(3)))
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="eval", overrides=["suite=files", f"suite.paths=[{held_out}]", "suite.k=2",
                                                     "suite.sampling.max_new_tokens=8", f"model.path={chat_model_dir}"])
    assert cfg.model.dtype == "bfloat16"
    results = evaluate(cfg, tmp_path / "out")
    row = results["benchmarks"]["held_out"]
    assert row["problems"] == 3 and 0 < row["response_tokens"]["mean"] <= 8
    samples = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and samples[0]["prompt"].startswith("<|im_start|>user\nWhat is 0+0?")


def test_the_warm_up_attends_to_the_prompts_end_of_turn_tokens_though_they_are_the_padding_token(chat_model_dir):
    """SmolLM2 pads with `<|im_end|>`, which ends every chat turn of the prompt too: the warm-up's
    attention mask comes from lengths, so the prompt is seen whole and only padding is hidden."""
    from archer.warmup import _encode

    _, tokenizer = load_pretrained(str(chat_model_dir), "float32")
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    template = ChatTemplate(instruction="")
    batch = [Sample("a", "What is 6*7?", "42", {"solution": "6 * 7 = 42."}), Sample("b", "Hi?", "1", {"solution": "1"})]
    ids, labels, mask = _encode(batch, tokenizer, template)
    prompt = template.encode(batch[0], tokenizer)
    assert tokenizer.eos_token_id in prompt  # the user turn's <|im_end|>
    assert mask[0].all() and mask[1].sum() < ids.shape[1]  # the longer row is attended whole
    length = int(mask[1].sum())
    assert ids[1, length - 1] == tokenizer.eos_token_id and labels[1, length - 1] == tokenizer.eos_token_id
    assert (labels[1, length:] == -100).all() and (labels[0, : len(prompt)] == -100).all()


def test_a_pretrained_chat_model_warms_up_on_worked_answers_under_bf16_autocast(chat_model_dir):
    from archer.warmup import WarmupConfig, supervised_warmup

    model, tokenizer = load_pretrained(str(chat_model_dir), "float32")
    samples = [Sample(str(i), f"What is {i} + 2?", str(i + 2), {"solution": f"{i} + 2 = {i + 2}. The answer is {i + 2}."})
               for i in range(4)] + [Sample("x", "No worked answer here.", "0")]  # skipped, not an error
    losses = supervised_warmup(model, tokenizer, ChatTemplate(instruction=""), samples,
                               WarmupConfig(steps=40, batch_size=4, lr=1e-2), seed=0, bf16=True)
    assert model.dtype == torch.float32  # autocast, not a cast: the weights keep their dtype
    assert len(losses) == 40 and losses[-1] < 0.5 * losses[0]


def test_archer_train_warms_a_chat_model_up_on_svamp_worked_answers_then_runs_rl(chat_model_dir, tmp_path, capsys):
    """`experiment=smollm2_math`'s path end to end on the tiny converted model: the warm-up on
    SVAMP's gold equations, the held-out figure after it (the before-RL one), one RL step."""
    from hydra import compose, initialize_config_dir

    from archer.train import config_dir, train

    overrides = ["experiment=smollm2_math", f"model.path={chat_model_dir}", "model.warmup.steps=3",
                 "model.warmup.batch_size=4", "rl.steps=1", "rl.prompts_per_step=2", "rl.samples_per_prompt=2",
                 "rl.mini_batch_prompts=2", "rl.micro_batch_size=4", "rollout.max_new_tokens=4",
                 "heldout.max_problems=2", "heldout.samples_per_problem=1", "checkpoint.every_n_steps=0", "export=false"]
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="train", overrides=overrides)
    summary = train(cfg, tmp_path / "run")
    printed = capsys.readouterr().out
    assert "warm-up: 3 supervised steps on 530 gold solutions" in printed
    assert summary["rl_steps"] == 1 and summary["pass1_before"] is not None and summary["pass1_after"] is not None
